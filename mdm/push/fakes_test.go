package push_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sundial-mdm/sundial/mdm/push"
)

// memStore is an in-memory push.Store following the documented contract,
// plus the check-in side (TokenUpdate, CheckIn) and pending-work flags.
type memStore struct {
	mu   sync.Mutex
	devs map[string]*memDevice
	recs []push.Record
	// failTargets makes PushTargets fail while set.
	failTargets error
}

type memDevice struct {
	target  push.Target
	invalid bool
	pending bool
	attempt int
	next    time.Time
}

func newMemStore() *memStore { return &memStore{devs: make(map[string]*memDevice)} }

// TokenUpdate stores a device's push info and clears the invalid flag.
func (m *memStore) TokenUpdate(t push.Target) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.devs[t.EnrollmentID]
	if d == nil {
		d = &memDevice{}
		m.devs[t.EnrollmentID] = d
	}
	d.target, d.invalid = t, false
}

// CheckIn is the device connecting: the re-push schedule is reset.
func (m *memStore) CheckIn(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if d := m.devs[id]; d != nil {
		d.attempt, d.next = 0, time.Time{}
	}
}

// SetPending marks whether the device has work waiting.
func (m *memStore) SetPending(id string, pending bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if d := m.devs[id]; d != nil {
		d.pending = pending
	}
}

func (m *memStore) setFailTargets(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failTargets = err
}

func (m *memStore) PushTargets(_ context.Context, ids []string) ([]push.TargetState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failTargets != nil {
		return nil, m.failTargets
	}
	var out []push.TargetState
	for _, id := range ids {
		d := m.devs[id]
		if d == nil || d.invalid || len(d.target.Token) == 0 {
			continue
		}
		out = append(out, push.TargetState{Target: d.target, Attempt: d.attempt})
	}
	return out, nil
}

func (m *memStore) RecordPushes(_ context.Context, recs []push.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range recs {
		d := m.devs[r.EnrollmentID]
		if d == nil {
			continue
		}
		d.attempt, d.next = r.Attempt, r.NextRepush
		if r.Outcome.InvalidatesToken() {
			d.invalid = true
		}
		m.recs = append(m.recs, r)
	}
	return nil
}

func (m *memStore) DueRepushes(_ context.Context, now time.Time, limit int) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	type due struct {
		id   string
		next time.Time
	}
	var all []due
	for id, d := range m.devs {
		if d.pending && !d.next.IsZero() && !d.next.After(now) {
			all = append(all, due{id, d.next})
		}
	}
	slices.SortFunc(all, func(a, b due) int {
		if c := a.next.Compare(b.next); c != 0 {
			return c
		}
		if a.id < b.id {
			return -1
		}
		return 1
	})
	var ids []string
	for _, d := range all[:min(limit, len(all))] {
		ids = append(ids, d.id)
	}
	return ids, nil
}

// records returns the records stored for id.
func (m *memStore) records(id string) []push.Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []push.Record
	for _, r := range m.recs {
		if r.EnrollmentID == id {
			out = append(out, r)
		}
	}
	return out
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// recordingSender is an in-memory push.Sender: it records each call and
// answers OK (or the outcome set per enrollment).
type recordingSender struct {
	mu       sync.Mutex
	clock    push.Clock
	calls    []sendCall
	outcomes map[string]push.Outcome
	// block, when set, makes Send wait for it to be closed or for ctx.
	block   chan struct{}
	entered chan struct{}
}

type sendCall struct {
	at  time.Time
	ids []string
}

func (s *recordingSender) Send(ctx context.Context, targets []push.Target) []push.Result {
	s.mu.Lock()
	call := sendCall{at: s.clock.Now()}
	for _, t := range targets {
		call.ids = append(call.ids, t.EnrollmentID)
	}
	s.calls = append(s.calls, call)
	block, entered := s.block, s.entered
	s.mu.Unlock()
	if entered != nil {
		select {
		case entered <- struct{}{}:
		default:
		}
	}
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]push.Result, len(targets))
	for i, t := range targets {
		o, ok := s.outcomes[t.EnrollmentID]
		if !ok {
			o = push.OutcomeOK
		}
		out[i] = push.Result{EnrollmentID: t.EnrollmentID, Outcome: o, Status: 200}
		if o != push.OutcomeOK {
			out[i].Status, out[i].Err = 500, errors.New(string(o))
		}
	}
	return out
}

// pushTimes returns when id was pushed.
func (s *recordingSender) pushTimes(id string) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []time.Time
	for _, c := range s.calls {
		if slices.Contains(c.ids, id) {
			out = append(out, c.at)
		}
	}
	return out
}

// metricValue returns the value of a counter, gauge, or histogram sample
// count named name with the given label pair (or no label if label is "").
func metricValue(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := label == ""
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					match = true
				}
			}
			if !match {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	t.Fatalf("metric %s{%s=%q} not found", name, label, value)
	return 0
}
