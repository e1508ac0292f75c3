package scheduler

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sundial-mdm/sundial/softwareupdate"
)

// MaxPauseReason caps a pause's reason (bytes).
const MaxPauseReason = 512

// FleetPause is the GroupID of a pause that holds every group.
const FleetPause = ""

// Pause is the kill switch: while it is in force, no Mac of its group (of
// every group for FleetPause) gets a forced step. The scheduler shows such
// a Mac as paused instead of notify, countdown or enforce, sends it no new
// install command and withdraws its enforcement declaration.
type Pause struct {
	GroupID string    `json:"group_id,omitempty"`
	Reason  string    `json:"reason"`
	Actor   string    `json:"actor"`
	At      time.Time `json:"at"`
}

// PauseStore keeps pauses. Stores that lack it cannot pause (the scheduler
// treats them as never paused; the Manager refuses to pause).
type PauseStore interface {
	// PutPause creates or replaces the pause of p.GroupID (a group that
	// must exist, or FleetPause) and writes the audit entry.
	PutPause(ctx context.Context, p Pause, audit *AuditEntry) error
	// DeletePause removes the pause of group (storage.ErrNotFound if none).
	DeletePause(ctx context.Context, group string, audit *AuditEntry) error
	// Pauses lists every pause in force, by group (the fleet's first).
	Pauses(ctx context.Context) ([]Pause, error)
}

// WithPauseStore sets where the scheduler reads pauses, for a Store that
// does not keep them itself (a wrapper of the real store).
func WithPauseStore(ps PauseStore) Option { return func(s *Scheduler) { s.pauseStore = ps } }

// loadPauses reads the pauses into c (none when the store keeps none).
func (s *Scheduler) loadPauses(ctx context.Context, c *config) error {
	ps := s.pauseStore
	if ps == nil {
		ps, _ = s.store.(PauseStore)
	}
	if ps == nil {
		return nil
	}
	list, err := ps.Pauses(ctx)
	if err != nil {
		return fmt.Errorf("load pauses: %w", err)
	}
	for i := range list {
		if c.pauses == nil {
			c.pauses = map[string]*Pause{}
		}
		c.pauses[list[i].GroupID] = &list[i]
	}
	return nil
}

// pauseFingerprint changes whenever a pause starts or ends.
func (c *config) pauseFingerprint(b *strings.Builder) {
	groups := make([]string, 0, len(c.pauses))
	for g := range c.pauses {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	for _, g := range groups {
		fmt.Fprintf(b, "z%s:%d;", g, c.pauses[g].At.UnixNano())
	}
}

// pauseFor returns the pause holding group's Macs, nil when none.
func (c *config) pauseFor(group string) *Pause {
	if len(c.pauses) == 0 {
		return nil
	}
	if p := c.pauses[FleetPause]; p != nil {
		return p
	}
	return c.pauses[group]
}

// forced phases are those in which the enforcers send a forcing step (a
// declaration with a deadline, a download leading to a forced install, the
// install itself): a pause holds them.
func forced(p softwareupdate.Phase) bool {
	return p == softwareupdate.PhaseNotify || p == softwareupdate.PhaseCountdown || p == softwareupdate.PhaseEnforce
}

// paused turns a forcing decision into the paused phase while p is in force.
func paused(d softwareupdate.Decision, p *Pause) softwareupdate.Decision {
	if p == nil || !forced(d.Phase) {
		return d
	}
	who := "the fleet"
	if p.GroupID != FleetPause {
		who = "group " + p.GroupID
	}
	return softwareupdate.Decision{Phase: softwareupdate.PhasePaused, Deadline: d.Deadline,
		Reason: fmt.Sprintf("paused (%s) by %s at %s: %s", who, p.Actor, p.At.UTC().Format(time.RFC3339), p.Reason)}
}

// withdraw removes what the device's enforcer left on the Mac (the
// declarative path's enforcement declaration, whose TargetLocalDateTime
// would otherwise make macOS install by itself at the deadline).
func (s *Scheduler) withdraw(ctx context.Context, st *State, now time.Time) ([]Transition, error) {
	r, ok := s.enforcers[st.Path].(Retirer)
	if !ok || st.Path == "" {
		return nil, nil
	}
	events, err := r.Retire(ctx, st, now)
	if err != nil {
		return nil, err
	}
	for i := range events {
		events[i].Reason = "paused: " + events[i].Reason
	}
	return events, nil
}

// checkPauseReason validates a pause's reason.
func checkPauseReason(reason string) error {
	reason = strings.TrimSpace(reason)
	if reason == "" || len(reason) > MaxPauseReason || !utf8.ValidString(reason) {
		return fmt.Errorf("%w: a pause needs a reason of 1 to %d bytes of UTF-8", ErrInvalid, MaxPauseReason)
	}
	return nil
}

func (m *Manager) pauseStore() (PauseStore, error) {
	ps, ok := m.store.(PauseStore)
	if !ok {
		return nil, fmt.Errorf("%w: this store cannot keep pauses", ErrInvalid)
	}
	return ps, nil
}

// Pause stops every forced step of group (FleetPause: of every group) from
// the next scheduler pass on, on every replica: the pause is stored, and a
// pass that sees the stored pauses change re-evaluates the fleet.
// Pausing a paused group replaces its reason (audited).
func (m *Manager) Pause(ctx context.Context, actor, group, reason string) (*Pause, error) {
	if err := checkActor(actor); err != nil {
		return nil, err
	}
	if err := checkPauseReason(reason); err != nil {
		return nil, err
	}
	if group != FleetPause && !ValidGroupID(group) {
		return nil, fmt.Errorf("%w: group %q", ErrInvalid, truncate(group))
	}
	ps, err := m.pauseStore()
	if err != nil {
		return nil, err
	}
	now := m.clock.Now().UTC()
	p := Pause{GroupID: group, Reason: strings.TrimSpace(reason), Actor: actor, At: now}
	a, err := NewAuditEntry(now, actor, "rollout.pause", pauseSubject(group), nil, p)
	if err != nil {
		return nil, err
	}
	if err := ps.PutPause(ctx, p, a); err != nil {
		return nil, fmt.Errorf("store pause: %w", err)
	}
	m.reevaluate()
	return &p, nil
}

// Resume ends the pause of group. Every Mac the pause held gets fresh
// minimum notice from its next evaluation (see Scheduler.evaluate).
func (m *Manager) Resume(ctx context.Context, actor, group string) error {
	if err := checkActor(actor); err != nil {
		return err
	}
	ps, err := m.pauseStore()
	if err != nil {
		return err
	}
	list, err := ps.Pauses(ctx)
	if err != nil {
		return err
	}
	var old *Pause
	for i := range list {
		if list[i].GroupID == group {
			old = &list[i]
		}
	}
	a, err := NewAuditEntry(m.clock.Now().UTC(), actor, "rollout.resume", pauseSubject(group), old, nil)
	if err != nil {
		return err
	}
	if err := ps.DeletePause(ctx, group, a); err != nil {
		return fmt.Errorf("delete pause: %w", err)
	}
	m.reevaluate()
	return nil
}

// Pauses lists the pauses in force.
func (m *Manager) Pauses(ctx context.Context) ([]Pause, error) {
	ps, ok := m.store.(PauseStore)
	if !ok {
		return nil, nil
	}
	return ps.Pauses(ctx)
}

func pauseSubject(group string) string {
	if group == FleetPause {
		return "fleet"
	}
	return "group/" + group
}
