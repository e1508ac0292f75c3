package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sundial-mdm/sundial/storage"
)

// Outbox is the part of storage.WebhookOutbox the worker drains.
type Outbox interface {
	DueWebhooks(ctx context.Context, now time.Time, limit int) ([]storage.WebhookDelivery, error)
	AckWebhook(ctx context.Context, eventID, endpoint string) error
	RetryWebhook(ctx context.Context, eventID, endpoint string, attempts int, next time.Time, lastErr string) error
	PruneWebhooks(ctx context.Context, olderThan time.Time, maxPerEndpoint int) (int, error)
}

// Endpoints lists the configured receivers.
type Endpoints interface {
	WebhookEndpoints(ctx context.Context) ([]storage.WebhookEndpoint, error)
}

// Opener opens a sealed endpoint secret (internal/seal.Sealer).
type Opener interface {
	Open(sealed []byte) ([]byte, error)
}

// Clock tells the worker the time.
type Clock interface{ Now() time.Time }

// Worker delivers due outbox entries. Run it on the scheduler leader only:
// the outbox is at-least-once, so a second worker would only duplicate.
type Worker struct {
	Outbox    Outbox
	Endpoints Endpoints
	Opener    Opener
	Clock     Clock
	Client    *http.Client // nil: a client with a 10 s timeout

	Batch          int           // deliveries per pass (0: 100)
	MinBackoff     time.Duration // first retry delay (0: 10 s)
	MaxBackoff     time.Duration // retry delay cap (0: 1 h)
	MaxAge         time.Duration // deliveries older than this are dropped (0: 7 days)
	MaxPerEndpoint int           // pending deliveries kept per endpoint (0: 10,000)
	PruneEvery     time.Duration // how often a pass prunes the outbox (0: 1 min)

	delivered, failed, dropped atomic.Int64

	pruneMu   sync.Mutex
	nextPrune time.Time // when a pass prunes again
}

// Stats are the worker's counters since start, for /metrics.
type Stats struct{ Delivered, Failed, Dropped int64 }

// Stats returns the counters.
func (w *Worker) Stats() Stats {
	return Stats{Delivered: w.delivered.Load(), Failed: w.failed.Load(), Dropped: w.dropped.Load()}
}

func orDefault[T comparable](v, d T) T {
	var zero T
	if v == zero {
		return d
	}
	return v
}

// Backoff is the delay before attempt n+1 after n failed attempts (n >= 1):
// min, then doubling, capped at max.
func Backoff(n int, first, max time.Duration) time.Duration {
	d := first
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

// prune drops old and excess deliveries, at most once every PruneEvery:
// the bounds are days and thousands of deliveries, while passes run every
// few seconds.
func (w *Worker) prune(ctx context.Context, now time.Time) error {
	w.pruneMu.Lock()
	defer w.pruneMu.Unlock()
	if now.Before(w.nextPrune) {
		return nil
	}
	n, err := w.Outbox.PruneWebhooks(ctx, now.Add(-orDefault(w.MaxAge, 7*24*time.Hour)), orDefault(w.MaxPerEndpoint, 10000))
	if err != nil {
		return fmt.Errorf("prune webhook outbox: %w", err)
	}
	w.dropped.Add(int64(n))
	w.nextPrune = now.Add(orDefault(w.PruneEvery, time.Minute))
	return nil
}

// maxResponse is how much of a receiver's response is read (and then
// dropped) so the connection can be reused.
const maxResponse = 4 << 10

// Pass prunes the outbox, then attempts every due delivery once. A
// receiver that fails has the rest of its due deliveries in this pass moved
// to its retry time, so one dead receiver neither holds up the others nor
// takes every pass's batch. It returns the first storage error.
func (w *Worker) Pass(ctx context.Context) error {
	now := w.Clock.Now()
	if err := w.prune(ctx, now); err != nil {
		return err
	}
	due, err := w.Outbox.DueWebhooks(ctx, now, orDefault(w.Batch, 100))
	if err != nil || len(due) == 0 {
		return err
	}
	eps, err := w.Endpoints.WebhookEndpoints(ctx)
	if err != nil {
		return err
	}
	byID := make(map[string]*storage.WebhookEndpoint, len(eps))
	for i := range eps {
		byID[eps[i].ID] = &eps[i]
	}
	down := map[string]time.Time{} // endpoint -> its retry time this pass
	var firstErr error
	keep := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	for _, d := range due {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if next, ok := down[d.Endpoint]; ok {
			keep(w.Outbox.RetryWebhook(ctx, d.EventID, d.Endpoint, d.Attempts, next, d.LastErr))
			continue
		}
		ep := byID[d.Endpoint]
		if ep == nil {
			// The endpoint was removed after the event was queued.
			keep(w.Outbox.AckWebhook(ctx, d.EventID, d.Endpoint))
			continue
		}
		if err := w.deliver(ctx, ep, &d); err != nil {
			w.failed.Add(1)
			next := w.Clock.Now().Add(Backoff(d.Attempts+1, orDefault(w.MinBackoff, 10*time.Second), orDefault(w.MaxBackoff, time.Hour)))
			down[d.Endpoint] = next
			keep(w.Outbox.RetryWebhook(ctx, d.EventID, d.Endpoint, d.Attempts+1, next, err.Error()))
			continue
		}
		w.delivered.Add(1)
		keep(w.Outbox.AckWebhook(ctx, d.EventID, d.Endpoint))
	}
	return firstErr
}

// errStatus is a receiver's non-2xx answer.
var errStatus = errors.New("receiver answered")

// deliver POSTs one delivery; only a 2xx answer counts as delivered.
func (w *Worker) deliver(ctx context.Context, ep *storage.WebhookEndpoint, d *storage.WebhookDelivery) error {
	secret, err := w.Opener.Open(ep.Secret)
	if err != nil {
		return fmt.Errorf("open endpoint secret: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(d.Body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Sundial-Webhook/1")
	req.Header.Set(HeaderEventID, d.EventID)
	req.Header.Set(HeaderEventType, d.Type)
	req.Header.Set(HeaderSignature, Sign(secret, w.Clock.Now(), d.Body))
	client := w.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		// The URL may carry credentials; report only the failure's kind.
		if uerr, ok := errors.AsType[*url.Error](err); ok {
			return fmt.Errorf("post: %w", uerr.Err)
		}
		return fmt.Errorf("post: %w", err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%w %d", errStatus, resp.StatusCode)
	}
	return nil
}

// wakingOutbox is an Outbox that can tell when it is empty and signal when
// deliveries are added (storage/bolt, whose writers are all in-process).
type wakingOutbox interface {
	OutboxEmpty() bool
	WebhookWake() <-chan struct{}
}

// IdleRecheck is how long Run sleeps on an empty waking outbox without a
// wake: a safety net, not the way deliveries are found.
const IdleRecheck = 30 * time.Second

// Run calls Pass every interval until ctx ends; storage errors are passed
// to report (nil: dropped) and the loop goes on. An outbox that signals
// additions is not polled while it is empty: an idle server then wakes for
// webhooks every IdleRecheck, not every interval.
func (w *Worker) Run(ctx context.Context, interval time.Duration, report func(error)) {
	wo, waking := w.Outbox.(wakingOutbox)
	var wake <-chan struct{}
	if waking {
		wake = wo.WebhookWake()
	}
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		if err := w.Pass(ctx); err != nil && report != nil && ctx.Err() == nil {
			report(err)
		}
		d := interval
		if waking && wo.OutboxEmpty() {
			d = IdleRecheck
		}
		t.Reset(d)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-wake:
		}
	}
}
