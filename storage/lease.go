package storage

import (
	"context"
	"log/slog"
	"time"
)

// LeaseStore keeps named leases: a row per name with a holder and an
// expiry, so that exactly one of several replicas does a job (the scheduler)
// at a time. A lease is not tied to a database session, so it works on
// PostgreSQL-compatible distributed databases too.
//
// Expiry is judged by the caller's now: a replica whose clock runs ahead of
// the holder's sees the lease expire early by the skew. Leases are safe as
// long as the clock skew between replicas (plus the time the holder needs to
// stop its work, see Leader) stays well below the renewal margin, ttl/6 with
// Leader.
type LeaseStore interface {
	// AcquireLease takes or renews the named lease for holder until now+ttl.
	// It returns true if holder holds it afterwards; another holder's
	// unexpired lease (expiry after now) is never taken. Empty names or
	// holders and a ttl <= 0 are an error.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, error)
	// ReleaseLease gives the lease up if holder holds it; otherwise it does
	// nothing.
	ReleaseLease(ctx context.Context, name, holder string) error
}

// LeaseHolder is a LeaseStore whose leases cannot outlive the process
// that holds them (bbolt: one process locks the file and keeps the leases
// in memory). Such a lease can be held without an expiry: nothing to
// renew, since no other process can take it and the holder's death ends it.
type LeaseHolder interface {
	// HoldLease takes the named lease for holder with no expiry if it is
	// free, expired at now or already holder's; it is held until
	// ReleaseLease (an AcquireLease by holder keeps it so). It reports
	// whether holder holds it afterwards.
	HoldLease(ctx context.Context, name, holder string, now time.Time) (bool, error)
}

// Leader runs a function on the one replica that holds a lease. Create it
// with NewLeader and call Run.
type Leader struct {
	store  LeaseStore
	name   string
	holder string
	ttl    time.Duration
	clock  interface{ Now() time.Time }
	log    *slog.Logger
}

// releaseTimeout bounds the ReleaseLease call when Run stops.
const releaseTimeout = 5 * time.Second

// NewLeader returns a Leader that competes for the lease name as holder
// (unique per replica, e.g. host name and process ID). The lease lasts ttl
// and is renewed every ttl/3. A nil store or clock, empty name or holder or
// ttl <= 0 is a programming error and panics; a nil log discards.
func NewLeader(store LeaseStore, name, holder string, ttl time.Duration, clock interface{ Now() time.Time }, log *slog.Logger) *Leader {
	if store == nil || clock == nil || name == "" || holder == "" || ttl <= 0 {
		panic("storage.NewLeader: store, clock, name, holder and a positive ttl are required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Leader{store: store, name: name, holder: holder, ttl: ttl, clock: clock, log: log.With("lease", name)}
}

// interval is how often the lease is renewed while held, and how often a
// follower tries to take it.
func (l *Leader) interval() time.Duration { return l.ttl / 3 }

// margin is how long before the lease's expiry fn's context is cancelled if
// the lease could not be renewed: the allowance for clock skew between
// replicas and for fn to stop.
func (l *Leader) margin() time.Duration { return l.ttl / 6 }

// Run competes for the lease until ctx ends. Whenever this replica holds
// the lease it runs fn with a context that is cancelled as soon as the lease
// is lost (another holder took it) or could not be renewed in time (ttl/6
// before it would expire, by this replica's clock), and when ctx ends. Run
// waits for fn to return before it competes again, so fn never runs twice
// at once in one process; fn must return promptly once its context is
// cancelled. If fn returns on its own the lease is released and Run tries
// again after one renewal interval. When ctx ends Run releases the lease
// and returns.
//
// A replica that dies without releasing the lease is replaced within
// ttl + ttl/3 (expiry plus one follower poll); one that stops cleanly within
// ttl/3.
//
// On a LeaseHolder store the lease is held without expiry and never
// renewed, so an idle leader does not wake every ttl/3 for nothing.
func (l *Leader) Run(ctx context.Context, fn func(ctx context.Context)) {
	holder, hold := l.store.(LeaseHolder)
	for ctx.Err() == nil {
		now := l.clock.Now()
		var ok bool
		var err error
		if hold {
			ok, err = holder.HoldLease(ctx, l.name, l.holder, now)
		} else {
			ok, err = l.store.AcquireLease(ctx, l.name, l.holder, l.ttl, now)
		}
		switch {
		case err != nil && ctx.Err() == nil:
			l.log.Warn("acquire lease", "err", err)
		case ok && hold:
			l.hold(ctx, fn)
		case ok:
			l.lead(ctx, fn, now.Add(l.ttl))
		}
		if !sleep(ctx, l.interval()) {
			return
		}
	}
}

// hold runs fn while a lease without expiry is held: until fn returns or
// ctx ends, then releases it.
func (l *Leader) hold(ctx context.Context, fn func(ctx context.Context)) {
	l.log.Info("acquired lease, leading", "holder", l.holder)
	fn(ctx)
	if ctx.Err() != nil {
		l.log.Info("stopping, releasing lease")
	} else {
		l.log.Info("leader function returned, releasing lease")
	}
	l.release(ctx)
}

// lead runs fn while the lease is held, renewing it; expires is the
// lease's expiry as acquired. It returns once fn has returned.
func (l *Leader) lead(ctx context.Context, fn func(ctx context.Context), expires time.Time) {
	l.log.Info("acquired lease, leading", "holder", l.holder)
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(fctx)
	}()
	stop := func(msg string, args ...any) {
		cancel()
		<-done
		l.log.Info(msg, args...)
	}

	renew := time.NewTicker(l.interval())
	defer renew.Stop()
	deadline := time.NewTimer(l.untilDeadline(expires))
	defer deadline.Stop()
	for {
		select {
		case <-ctx.Done():
			stop("stopping, releasing lease")
			l.release(ctx)
			return
		case <-done:
			l.log.Info("leader function returned, releasing lease")
			l.release(ctx)
			return
		case <-deadline.C:
			stop("lease not renewed in time, stopped leading")
			return
		case <-renew.C:
			now := l.clock.Now()
			rctx, rcancel := context.WithTimeout(ctx, l.untilDeadline(expires))
			ok, err := l.store.AcquireLease(rctx, l.name, l.holder, l.ttl, now)
			rcancel()
			switch {
			case err != nil:
				if ctx.Err() == nil {
					l.log.Warn("renew lease", "err", err)
				}
			case !ok:
				stop("lease lost to another holder, stopped leading")
				return
			default:
				expires = now.Add(l.ttl)
				deadline.Reset(l.untilDeadline(expires))
			}
		}
	}
}

// untilDeadline is the time left before fn must be stopped if the lease
// expiring at expires is not renewed; at least a nanosecond, so that the
// timer fires at once when it has passed.
func (l *Leader) untilDeadline(expires time.Time) time.Duration {
	return max(expires.Add(-l.margin()).Sub(l.clock.Now()), time.Nanosecond)
}

// release gives the lease up, also when ctx has ended.
func (l *Leader) release(ctx context.Context) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	if err := l.store.ReleaseLease(rctx, l.name, l.holder); err != nil {
		l.log.Warn("release lease", "err", err)
	}
}

// sleep waits d or until ctx ends; it reports whether ctx is still alive.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
