package scheduler

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate"
)

// RingGateInterval is how often a pass re-tallies the rings' Macs. A gate
// decides over hours or days, so a few minutes' staleness costs nothing,
// and the fleet's states are read at most this often (never without plans).
const RingGateInterval = 5 * time.Minute

// ringGates is the last gate evaluation: the rings it holds, by group,
// and every plan's ring statuses, by plan ID.
type ringGates struct {
	at     time.Time
	held   map[string]RingStatus
	status map[string][]RingStatus
}

// RingStatuses returns the last gate evaluation of every plan, by plan ID
// (with the tallies' reasons), nil before the first one.
func (s *Scheduler) RingStatuses() map[string][]RingStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]RingStatus, len(s.gates.status))
	for id, st := range s.gates.status {
		out[id] = append([]RingStatus(nil), st...)
	}
	return out
}

func (s *Scheduler) rings() RingStore {
	if s.ringStore != nil {
		return s.ringStore
	}
	rs, _ := s.store.(RingStore)
	return rs
}

// tallyRings counts the Macs of every ring group by phase, from their
// stored states, page by page. Macs never evaluated count as eligible and
// not compliant, so a ring whose Macs were just enrolled holds the next
// one instead of passing as empty.
func (s *Scheduler) tallyRings(ctx context.Context, cfg *config) (map[string]*RingTally, error) {
	out := make(map[string]*RingTally, len(cfg.ringOf))
	for g := range cfg.ringOf {
		out[g] = &RingTally{}
	}
	for after := ""; ; {
		ids, err := s.store.Unevaluated(ctx, after, s.batch)
		if err != nil {
			return nil, fmt.Errorf("list unevaluated devices: %w", err)
		}
		if len(ids) == 0 {
			break
		}
		after = ids[len(ids)-1]
		groups, err := s.store.GroupsOf(ctx, ids)
		if err != nil {
			return nil, fmt.Errorf("load group membership: %w", err)
		}
		for _, g := range groups {
			if t := out[g]; t != nil {
				t.Add(softwareupdate.PhasePending)
			}
		}
	}
	if gp := s.groupPhaseStore(); gp != nil {
		if err := s.tallyPhases(ctx, gp, out); err != nil {
			return nil, fmt.Errorf("list groups and phases: %w", err)
		}
		return out, nil
	}
	for after := ""; ; {
		ids, err := s.store.StateIDs(ctx, after, s.batch)
		if err != nil {
			return nil, fmt.Errorf("list update states: %w", err)
		}
		if len(ids) == 0 {
			return out, nil
		}
		after = ids[len(ids)-1]
		states, err := s.store.States(ctx, ids)
		if err != nil {
			return nil, fmt.Errorf("load update states: %w", err)
		}
		for _, st := range states {
			if st == nil {
				continue
			}
			if t := out[st.GroupID]; t != nil {
				t.Add(st.Phase)
			}
		}
		if len(ids) < s.batch {
			return out, nil
		}
	}
}

// refreshGates re-evaluates the ring gates when RingGateInterval has
// passed (or the plans changed): it records each ring's start, and asks
// for a sweep when the set of held rings changes, so that Macs of a ring
// whose gate opened start their notice in this pass.
func (s *Scheduler) refreshGates(ctx context.Context, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg, err := s.loadConfig(ctx)
	if err != nil {
		return err
	}
	if len(cfg.rings) == 0 {
		if len(s.gates.held) > 0 {
			s.requestSweep()
		}
		s.gates = ringGates{}
		return nil
	}
	fp := cfg.fingerprint()
	if s.gatesFP == fp && !s.gates.at.IsZero() && now.Sub(s.gates.at) < RingGateInterval {
		return nil
	}
	tallies, err := s.tallyRings(ctx, cfg)
	if err != nil {
		return err
	}
	held, status := map[string]RingStatus{}, map[string][]RingStatus{}
	for _, p := range cfg.rings {
		rings := make([]Ring, len(p.Groups))
		for i, g := range p.Groups {
			rings[i] = Ring{Name: g, Gate: p.Gate, Tally: *tallies[g]}
			if i < len(p.States) {
				rings[i].Started = p.States[i].Started
				rings[i].Promoted = p.States[i].Promoted != nil
			}
		}
		changed := false
		status[p.ID] = GateRings(rings, now)
		for i, rs := range status[p.ID] {
			if !rs.MayNotify {
				held[rs.Name] = rs
				continue
			}
			if rings[i].Started.IsZero() {
				if len(p.States) != len(p.Groups) {
					p.States = make([]RingState, len(p.Groups))
				}
				p.States[i].Started = now.UTC()
				changed = true
			}
		}
		if changed {
			rs := s.rings()
			if rs == nil {
				return fmt.Errorf("ring plan %s: no ring store", p.ID)
			}
			if err := rs.PutRingPlan(ctx, *p, nil); err != nil {
				return fmt.Errorf("record ring start of %s: %w", p.ID, err)
			}
		}
	}
	if !sameHeld(s.gates.held, held) {
		s.requestSweep()
	}
	s.gates = ringGates{at: now, held: held, status: status}
	s.gatesFP = cfg.fingerprint()
	s.observeGates(ctx, now, cfg, status)
	return nil
}

func (s *Scheduler) requestSweep() {
	s.evMu.Lock()
	s.sweep = true
	s.evMu.Unlock()
}

func sameHeld(a, b map[string]RingStatus) bool {
	if len(a) != len(b) {
		return false
	}
	for g := range a {
		if _, ok := b[g]; !ok {
			return false
		}
	}
	return true
}

// heldBy returns the gate holding group's ring, if any. s.mu must be held.
func (s *Scheduler) heldBy(group string) (RingStatus, bool) {
	rs, ok := s.gates.held[group]
	return rs, ok
}

// notYetNotified reports whether st has had no notice of its target (its
// phase never reached notify; a pending Mac's scan step is no notice): a
// ring gate may still hold it without moving a deadline it was told of.
func notYetNotified(st *State) bool {
	switch st.Phase {
	case "", softwareupdate.PhasePending, softwareupdate.PhaseUnknown, softwareupdate.PhaseUnmanaged, softwareupdate.PhaseCompliant:
		return true
	}
	return false
}

// heldReasonPrefix starts the reason of every Mac a ring gate holds.
const heldReasonPrefix = "held: ring "

// HeldByRing reports whether a ring's health gate holds st: pending, with
// the reason heldDecision gives.
func HeldByRing(st *State) bool {
	return st.Phase == softwareupdate.PhasePending && strings.HasPrefix(st.Reason, heldReasonPrefix)
}

// heldDecision keeps a held Mac pending: its notice has not started, so it
// has no deadline yet; the sweep that follows the gate's opening brings it
// back, and it gets full minimum notice from then. The reason names the
// holding ring only: the tally changes often, and re-evaluating every held
// Mac for a new count would cost a sweep; RingStatuses has the counts.
func heldDecision(d softwareupdate.Decision, ring RingStatus) softwareupdate.Decision {
	switch d.Phase {
	case softwareupdate.PhasePending, softwareupdate.PhaseNotify, softwareupdate.PhaseCountdown, softwareupdate.PhaseEnforce:
		return softwareupdate.Decision{Phase: softwareupdate.PhasePending,
			Reason: fmt.Sprintf("%s%s has not passed its health gate", heldReasonPrefix, ring.HeldBy)}
	}
	return d
}

// ringAnchor is the notice anchor of a not-yet-notified Mac of group: the
// start of its ring's notice when that is later than first (a ring after
// the first starts when the gate before it opens), else first.
func (c *config) ringAnchor(group string, first time.Time) time.Time {
	ref, ok := c.ringOf[group]
	if !ok || ref.index == 0 || ref.index >= len(ref.plan.States) {
		return first
	}
	if started := ref.plan.States[ref.index].Started; started.After(first) {
		return started
	}
	return first
}
