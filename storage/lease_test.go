package storage_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sundial-mdm/sundial/storage"
)

// memLeases is an in-memory LeaseStore whose calls can be made to fail,
// like a database that went away.
type memLeases struct {
	mu       sync.Mutex
	holder   string
	expires  time.Time
	down     bool
	releases int
}

var errDown = errors.New("database unreachable")

func (m *memLeases) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return false, errDown
	}
	if m.holder != "" && m.holder != holder && now.Before(m.expires) {
		return false, nil
	}
	m.holder, m.expires = holder, now.Add(ttl)
	return true, nil
}

func (m *memLeases) ReleaseLease(ctx context.Context, name, holder string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return errDown
	}
	if m.holder == holder {
		m.holder, m.releases = "", m.releases+1
	}
	return nil
}

func (m *memLeases) set(fn func(m *memLeases)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fn(m)
}

// fakeClock reads synctest's fake time.
type fakeClock struct{}

func (fakeClock) Now() time.Time { return time.Now() }

const ttl = 30 * time.Second

// leading runs a Leader on store; it reports each start of fn on started
// and each stop on stopped (with the time).
type leading struct {
	started, stopped chan time.Time
	cancel           context.CancelFunc
	done             chan struct{}
}

func lead(store storage.LeaseStore, holder string, fn func(ctx context.Context)) *leading {
	ctx, cancel := context.WithCancel(context.Background())
	l := &leading{started: make(chan time.Time, 8), stopped: make(chan time.Time, 8), cancel: cancel, done: make(chan struct{})}
	if fn == nil {
		fn = func(ctx context.Context) { <-ctx.Done() }
	}
	go func() {
		defer close(l.done)
		storage.NewLeader(store, "scheduler", holder, ttl, fakeClock{}, slog.New(slog.DiscardHandler)).Run(ctx, func(ctx context.Context) {
			l.started <- time.Now()
			fn(ctx)
			l.stopped <- time.Now()
		})
	}()
	return l
}

func (l *leading) stop() { l.cancel(); <-l.done }

// checkRerun waits for two runs of a fn that returns at once and checks
// that the leader ran it again one renewal interval after the first.
func (l *leading) checkRerun(t *testing.T) {
	t.Helper()
	first := <-l.started
	<-l.stopped
	second := <-l.started
	if d := second.Sub(first); d != ttl/3 {
		t.Errorf("fn ran again after %v, want one renewal interval (%v)", d, ttl/3)
	}
	<-l.stopped
}

func TestLeaderStopsWhenRenewalFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &memLeases{}
		l := lead(store, "a", nil)
		defer l.stop()
		start := <-l.started
		// Two renewals succeed, then the database goes away.
		time.Sleep(ttl*2/3 + time.Second)
		store.set(func(m *memLeases) { m.down = true })
		lastRenew := start.Add(ttl * 2 / 3)
		stop := <-l.stopped
		if want := lastRenew.Add(ttl - ttl/6); !stop.Equal(want) {
			t.Errorf("fn stopped %v after the last renewal, want %v (ttl - ttl/6)", stop.Sub(lastRenew), want.Sub(lastRenew))
		}
		// The lease has not expired yet when fn is stopped.
		store.mu.Lock()
		expires := store.expires
		store.mu.Unlock()
		if !stop.Before(expires) {
			t.Errorf("fn stopped at %v, after the lease expired at %v", stop, expires)
		}
		// Back up: the leader leads again.
		store.set(func(m *memLeases) { m.down = false })
		again := <-l.started
		if d := again.Sub(stop); d > ttl/3 {
			t.Errorf("led again %v after the database came back, want within ttl/3", d)
		}
	})
}

func TestLeaderStopsWhenLeaseLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &memLeases{}
		l := lead(store, "a", nil)
		defer l.stop()
		start := <-l.started
		time.Sleep(time.Second)
		// Someone else holds it now (as after a long pause of this process).
		store.set(func(m *memLeases) { m.holder, m.expires = "b", start.Add(time.Hour) })
		stop := <-l.stopped
		if want := start.Add(ttl / 3); !stop.Equal(want) {
			t.Errorf("fn stopped %v after start, want at the next renewal (%v)", stop.Sub(start), ttl/3)
		}
		// It does not lead again while b holds the lease.
		time.Sleep(10 * ttl)
		select {
		case <-l.started:
			t.Error("led again while another holder held the lease")
		default:
		}
	})
}

func TestLeaderReleasesOnStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &memLeases{}
		a := lead(store, "a", nil)
		<-a.started
		b := lead(store, "b", nil)
		defer b.stop()
		time.Sleep(5 * ttl)
		select {
		case <-b.started:
			t.Fatal("b led while a held the lease")
		default:
		}
		checkCleanHandover(t, store, a, b)
	})
}

// checkCleanHandover stops a, which leads, and checks that it released the
// lease once and that b, which waits, took over within ttl/3.
func checkCleanHandover(t *testing.T, store *memLeases, a, b *leading) {
	t.Helper()
	a.stop()
	stopped := time.Now()
	store.mu.Lock()
	releases := store.releases
	store.mu.Unlock()
	if releases != 1 {
		t.Errorf("%d releases after a stopped, want 1", releases)
	}
	if d := (<-b.started).Sub(stopped); d > ttl/3 {
		t.Errorf("b took over %v after a clean stop, want within ttl/3", d)
	}
}

func TestLeaderTakesOverFromDeadHolder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A lease left behind by a replica that died just now.
		died := time.Now()
		store := &memLeases{holder: "dead", expires: died.Add(ttl)}
		l := lead(store, "a", nil)
		defer l.stop()
		at := <-l.started
		if d := at.Sub(died); d < ttl || d > ttl+ttl/3 {
			t.Errorf("took over %v after the holder died, want between ttl and ttl + ttl/3", d)
		}
	})
}

func TestLeaderFnReturns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &memLeases{}
		runs := 0
		l := lead(store, "a", func(ctx context.Context) { runs++ })
		l.checkRerun(t)
		l.stop()
		if store.releases < 2 || runs < 2 {
			t.Errorf("%d runs, %d releases; want the lease released after each run", runs, store.releases)
		}
	})
}

func TestNewLeaderRejectsBadArguments(t *testing.T) {
	store := &memLeases{}
	tests := []struct {
		name         string
		store        storage.LeaseStore
		lease, owner string
		ttl          time.Duration
		clock        interface{ Now() time.Time }
	}{
		{"nil store", nil, "s", "a", ttl, fakeClock{}},
		{"empty name", store, "", "a", ttl, fakeClock{}},
		{"empty holder", store, "s", "", ttl, fakeClock{}},
		{"zero ttl", store, "s", "a", 0, fakeClock{}},
		{"nil clock", store, "s", "a", ttl, nil},
	}
	for _, tc := range tests {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: NewLeader did not panic", tc.name)
				}
			}()
			storage.NewLeader(tc.store, tc.lease, tc.owner, tc.ttl, tc.clock, nil)
		}()
	}
}

// heldLeases is a memLeases that is also a storage.LeaseHolder, like the
// bbolt store: it counts every call so a test can see that nothing renews.
type heldLeases struct {
	memLeases
	calls int
}

func (h *heldLeases) HoldLease(ctx context.Context, name, holder string, now time.Time) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	if h.holder != "" && h.holder != holder && (h.expires.IsZero() || now.Before(h.expires)) {
		return false, nil
	}
	h.holder, h.expires = holder, time.Time{}
	return true, nil
}

func (h *heldLeases) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, error) {
	h.mu.Lock()
	h.calls++
	h.mu.Unlock()
	return h.memLeases.AcquireLease(ctx, name, holder, ttl, now)
}

func (h *heldLeases) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls
}

func TestLeaderHoldsWithoutRenewing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &heldLeases{}
		a := lead(store, "a", nil)
		<-a.started
		b := lead(store, "b", nil)
		defer b.stop()
		synctest.Wait()
		before := store.count() // a's hold and b's first try
		time.Sleep(100*ttl + ttl/6)
		synctest.Wait()
		// Only b, the follower, keeps asking: once per ttl/3.
		if got, want := store.count()-before, 300; got != want {
			t.Errorf("%d lease calls in 100 ttl while a held it, want %d (b's tries only)", got, want)
		}
		select {
		case <-b.started:
			t.Fatal("b led while a held the lease")
		case <-a.stopped:
			t.Fatal("a stopped leading without cause")
		default:
		}
		checkCleanHandover(t, &store.memLeases, a, b)
	})
}

func TestLeaderHoldFnReturns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &heldLeases{}
		l := lead(store, "a", func(ctx context.Context) {})
		l.checkRerun(t)
		l.stop()
		store.mu.Lock()
		defer store.mu.Unlock()
		if store.releases < 2 {
			t.Errorf("%d releases; want the lease released after each run", store.releases)
		}
	})
}
