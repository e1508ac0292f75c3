package pgsql

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/storagetest"
)

func TestLeaseConformance(t *testing.T) {
	testDSN(t)
	storagetest.RunLease(t, func(t *testing.T) storage.LeaseStore {
		db := newTestDB(t)
		s, err := Open(t.Context(), db.dsn, db.option())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// wallClock is the real clock: the leader tests run against a real
// database in real time.
type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// leaderLog records when each replica's leader function ran.
type leaderLog struct {
	mu      sync.Mutex
	running map[string]bool
	starts  map[string]time.Time
	stops   map[string]time.Time
	overlap []string
	started chan string
}

func newLeaderLog() *leaderLog {
	return &leaderLog{running: map[string]bool{}, starts: map[string]time.Time{}, stops: map[string]time.Time{}, started: make(chan string, 16)}
}

// fn is the leader function of replica: it runs until its context ends.
func (l *leaderLog) fn(replica string) func(ctx context.Context) {
	return func(ctx context.Context) {
		l.mu.Lock()
		for other, on := range l.running {
			if on {
				l.overlap = append(l.overlap, other+" still leading when "+replica+" started")
			}
		}
		l.running[replica] = true
		l.starts[replica] = time.Now()
		l.mu.Unlock()
		l.started <- replica
		<-ctx.Done()
		l.mu.Lock()
		l.running[replica] = false
		l.stops[replica] = time.Now()
		l.mu.Unlock()
	}
}

func (l *leaderLog) waitStart(t *testing.T, within time.Duration) (string, time.Time) {
	t.Helper()
	select {
	case r := <-l.started:
		l.mu.Lock()
		defer l.mu.Unlock()
		return r, l.starts[r]
	case <-time.After(within):
		t.Fatalf("no replica started leading within %v", within)
		return "", time.Time{}
	}
}

// runLeader starts a Leader; the returned stop cancels it and waits for Run
// to return.
func runLeader(store storage.LeaseStore, holder string, ttl time.Duration, log *leaderLog) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	l := storage.NewLeader(store, "scheduler", holder, ttl, wallClock{}, slog.New(slog.DiscardHandler))
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Run(ctx, log.fn(holder))
	}()
	return func() { cancel(); <-done }
}

// TestLeaderTakeover runs two leaders on one database. The first one's
// process dies (its connection pool closes under it, so it can neither
// renew nor release): it stops leading before its lease expires, and the
// second takes over within ttl plus one poll, never while the first still
// leads. Then the second stops cleanly and a third takes over within one
// poll.
func TestLeaderTakeover(t *testing.T) {
	db := newTestDB(t)
	const ttl = 600 * time.Millisecond
	const slack = 250 * time.Millisecond // scheduling and round trips under -race
	dead, err := Open(t.Context(), db.dsn, db.option())
	if err != nil {
		t.Fatal(err)
	}
	log := newLeaderLog()

	stopA := runLeader(dead, "replica-a", ttl, log)
	defer stopA()
	if r, _ := log.waitStart(t, 5*time.Second); r != "replica-a" {
		t.Fatalf("first leader = %s", r)
	}
	stopB := runLeader(db.open(t), "replica-b", ttl, log)
	defer stopB()
	// B stays a follower while A renews: three lease lifetimes.
	select {
	case r := <-log.started:
		t.Fatalf("%s started leading while replica-a held the lease", r)
	case <-time.After(3 * ttl):
	}

	dead.Close()
	killed := time.Now()
	r, at := log.waitStart(t, 5*time.Second)
	if r != "replica-b" {
		t.Fatalf("took over: %s, want replica-b", r)
	}
	takeover := at.Sub(killed)
	if bound := ttl + ttl/3 + slack; takeover > bound {
		t.Errorf("takeover after %v, want within %v (ttl + ttl/3 + slack)", takeover, bound)
	}
	t.Logf("takeover after the leader died: %v (ttl %v)", takeover, ttl)

	stopC := runLeader(db.open(t), "replica-c", ttl, log)
	defer stopC()
	stopB()
	stopped := time.Now()
	r, at = log.waitStart(t, 5*time.Second)
	if r != "replica-c" {
		t.Fatalf("took over: %s, want replica-c", r)
	}
	if handover, bound := at.Sub(stopped), ttl/3+slack; handover > bound {
		t.Errorf("handover after a clean stop took %v, want within %v", handover, bound)
	}
	stopC()

	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.overlap) > 0 {
		t.Errorf("two leaders at once: %v", log.overlap)
	}
	if a, b := log.stops["replica-a"], log.starts["replica-b"]; a.IsZero() || !a.Before(b) {
		t.Errorf("replica-a stopped at %v, replica-b started at %v", a, b)
	}
	// The last leader released the lease on its way out.
	if ok, err := db.open(t).AcquireLease(t.Context(), "scheduler", "replica-d", ttl, time.Now()); err != nil || !ok {
		t.Errorf("lease after every leader stopped: %v, %v; want free", ok, err)
	}
}

// TestLeaderExclusive has three replicas compete while the leader is
// stopped again and again: at no moment do two lead.
func TestLeaderExclusive(t *testing.T) {
	db := newTestDB(t)
	const ttl = 300 * time.Millisecond
	log := newLeaderLog()
	stops := map[string]func(){}
	for _, h := range []string{"r0", "r1", "r2"} {
		stops[h] = runLeader(db.open(t), h, ttl, log)
	}
	for round := range 4 {
		r, _ := log.waitStart(t, 5*time.Second)
		stops[r]()
		h := r + "-" + string(rune('a'+round))
		stops[h] = runLeader(db.open(t), h, ttl, log)
	}
	for _, stop := range stops {
		stop()
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.overlap) > 0 {
		t.Errorf("two leaders at once: %v", log.overlap)
	}
	if len(log.starts) < 4 {
		t.Errorf("%d replicas led, want at least 4", len(log.starts))
	}
}

func BenchmarkAcquireLease(b *testing.B) {
	s := newTestDB(b).open(b)
	ctx := b.Context()
	now := t0
	for b.Loop() {
		now = now.Add(time.Second)
		if ok, err := s.AcquireLease(ctx, "scheduler", "replica-a", time.Minute, now); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}
