package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sundial-mdm/sundial/storage/bolt"
)

// faults remembers what went wrong inside the server since it started, so
// that /healthz says "degraded" and /metrics counts it instead of the
// fault showing only as a client's stream error.
type faults struct {
	panics prometheus.Counter

	mu        sync.Mutex
	n         int
	lastPanic string
	lastAt    time.Time
	storage   string // what the background storage check found
}

func newFaults(reg prometheus.Registerer) *faults {
	f := &faults{panics: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sundial_http_handler_panics_total",
		Help: "Request handlers that panicked and were recovered (each answered 500).",
	})}
	reg.MustRegister(f.panics)
	return f
}

// issues lists the faults for /healthz; none means healthy.
func (f *faults) issues() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	if f.storage != "" {
		out = append(out, f.storage)
	}
	if f.n > 0 {
		out = append(out, fmt.Sprintf("%d request %s panicked since start, the last at %s: %s (see the error log; a storage panic means a damaged database: run `sundial storage check` on a backup)",
			f.n, plural(f.n, "handler", "handlers"), f.lastAt.UTC().Format(time.RFC3339), f.lastPanic))
	}
	return out
}

// recoverPanics answers 500 to a request whose handler panicked, logs the
// panic at error with the request and the stack, and counts it. Without it
// net/http logs the panic at debug only (the server's ErrorLog) and an
// HTTP/2 client sees INTERNAL_ERROR. The query string is not logged: it
// may hold an enrollment secret.
func (a *app) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { // net/http's own way to abort
				panic(v)
			}
			msg := fmt.Sprint(v)
			if len(msg) > 200 {
				msg = msg[:200] + "..."
			}
			a.faults.panics.Inc()
			a.faults.mu.Lock()
			a.faults.n++
			a.faults.lastPanic, a.faults.lastAt = msg, a.clock.Now()
			a.faults.mu.Unlock()
			a.log.Error("request handler panicked", "method", r.Method, "path", r.URL.Path, "panic", msg, "stack", string(debug.Stack()))
			http.Error(w, "internal error", http.StatusInternalServerError)
		}()
		next.ServeHTTP(w, r)
	})
}

// consistencyChecker is a store that can read all of itself (bbolt).
type consistencyChecker interface {
	CheckConsistency(ctx context.Context) (buckets, keys int, err error)
	Warnings() []string
}

// checkStorage logs what the check at open found survivable, then reads
// the whole database once in the background: damage that the quick check
// at open cannot see turns /healthz degraded and is logged with what to
// do, instead of surfacing as a panic in whichever request meets it.
func (a *app) checkStorage(ctx context.Context) {
	cc, ok := a.store.(consistencyChecker)
	if !ok {
		return
	}
	for _, w := range cc.Warnings() {
		a.log.Warn("database check: "+w, "file", a.cfg.path(dbFile))
	}
	start := time.Now()
	buckets, keys, err := cc.CheckConsistency(ctx)
	switch {
	case errors.Is(err, context.Canceled):
	case err != nil:
		a.faults.mu.Lock()
		a.faults.storage = "database damaged: " + err.Error() + ". " + bolt.RestoreHint(a.cfg.path(dbFile))
		a.faults.mu.Unlock()
		a.log.Error("database check failed: the file is damaged", "file", a.cfg.path(dbFile), "err", err, "restore", bolt.RestoreHint(a.cfg.path(dbFile)))
	default:
		a.log.Info("database check passed", "buckets", buckets, "keys", keys, "took", time.Since(start).Round(time.Millisecond))
	}
}
