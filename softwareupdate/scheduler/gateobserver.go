package scheduler

import (
	"context"
	"time"
)

// GateObserver is told of every ring-gate evaluation: the plans as the
// evaluation left them (ring starts recorded) and each plan's ring
// statuses, by plan ID. It runs on the replica that evaluates (the
// leader), at most every RingGateInterval and only while plans exist, with
// the scheduler's evaluation lock held: it must not call the scheduler.
// The webhook side turns it into ring.held and ring.started events.
type GateObserver func(ctx context.Context, now time.Time, plans []RingPlan, status map[string][]RingStatus)

// WithGateObserver sets the GateObserver.
func WithGateObserver(o GateObserver) Option { return func(s *Scheduler) { s.gateObserver = o } }

// observeGates hands the evaluation just made to the observer, if any,
// with copies of the plans so it cannot change the scheduler's.
func (s *Scheduler) observeGates(ctx context.Context, now time.Time, cfg *config, status map[string][]RingStatus) {
	if s.gateObserver == nil {
		return
	}
	plans := make([]RingPlan, len(cfg.rings))
	for i, p := range cfg.rings {
		plans[i] = *p
		plans[i].Groups = append([]string(nil), p.Groups...)
		plans[i].States = append([]RingState(nil), p.States...)
	}
	s.gateObserver(ctx, now, plans, status)
}
