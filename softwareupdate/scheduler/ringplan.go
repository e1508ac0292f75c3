package scheduler

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// MaxRingGroups caps the rings of one plan.
const MaxRingGroups = 16

// Promotion is an admin's promotion by hand of the ring after a gate.
type Promotion struct {
	At    time.Time `json:"at"`
	Actor string    `json:"actor"`
}

// RingState is the stored progress of one ring of a plan.
type RingState struct {
	// Started is when the ring's notice started (zero: not yet).
	Started time.Time `json:"started,omitempty"`
	// Promoted is set when an admin opened this ring's gate by hand.
	Promoted *Promotion `json:"promoted,omitempty"`
}

// RingPlan orders groups into rings: the notice of Groups[i+1] starts only
// once Groups[i] passes Gate (rings.go). States is aligned with Groups.
type RingPlan struct {
	ID     string      `json:"id"`
	Groups []string    `json:"groups"`
	Gate   RingGate    `json:"gate"`
	States []RingState `json:"states,omitempty"`
}

// Validate checks the plan's ID, its groups (2 to MaxRingGroups, distinct,
// valid IDs), its gate and that States is aligned with Groups.
func (p *RingPlan) Validate() error {
	if !ValidGroupID(p.ID) {
		return fmt.Errorf("%w: ring plan ID %q", ErrInvalid, truncate(p.ID))
	}
	if len(p.Groups) < 2 || len(p.Groups) > MaxRingGroups {
		return fmt.Errorf("%w: a ring plan needs 2 to %d groups, got %d", ErrInvalid, MaxRingGroups, len(p.Groups))
	}
	seen := make(map[string]bool, len(p.Groups))
	for _, g := range p.Groups {
		if !ValidGroupID(g) {
			return fmt.Errorf("%w: group %q", ErrInvalid, truncate(g))
		}
		if seen[g] {
			return fmt.Errorf("%w: group %s appears twice in ring plan %s", ErrInvalid, g, p.ID)
		}
		seen[g] = true
	}
	if len(p.States) != 0 && len(p.States) != len(p.Groups) {
		return fmt.Errorf("%w: ring plan %s has %d states for %d groups", ErrInvalid, p.ID, len(p.States), len(p.Groups))
	}
	return p.Gate.Validate()
}

// RingStore keeps ring plans. Stores that lack it have no rings (the
// scheduler gates nothing).
type RingStore interface {
	// PutRingPlan creates or replaces plan p (every group must exist,
	// else storage.ErrNotFound) and writes the audit entry.
	PutRingPlan(ctx context.Context, p RingPlan, audit *AuditEntry) error
	// DeleteRingPlan removes plan id (storage.ErrNotFound if none).
	DeleteRingPlan(ctx context.Context, id string, audit *AuditEntry) error
	// RingPlans lists every plan, by ID.
	RingPlans(ctx context.Context) ([]RingPlan, error)
}

// WithRingStore sets where the scheduler reads ring plans, for a Store
// that does not keep them itself (a wrapper of the real store).
func WithRingStore(rs RingStore) Option { return func(s *Scheduler) { s.ringStore = rs } }

// loadRings reads the ring plans into c, indexed by group.
func (s *Scheduler) loadRings(ctx context.Context, c *config) error {
	rs := s.ringStore
	if rs == nil {
		rs, _ = s.store.(RingStore)
	}
	if rs == nil {
		return nil
	}
	list, err := rs.RingPlans(ctx)
	if err != nil {
		return fmt.Errorf("load ring plans: %w", err)
	}
	for i := range list {
		if c.ringOf == nil {
			c.ringOf = map[string]ringRef{}
		}
		c.rings = append(c.rings, &list[i])
		for j, g := range list[i].Groups {
			c.ringOf[g] = ringRef{plan: &list[i], index: j}
		}
	}
	return nil
}

// ringRef locates a group in its plan.
type ringRef struct {
	plan  *RingPlan
	index int
}

// ringFingerprint changes whenever a plan, a start or a promotion does.
func (c *config) ringFingerprint(b *strings.Builder) {
	ids := make([]int, len(c.rings))
	for i := range ids {
		ids[i] = i
	}
	sort.Slice(ids, func(i, j int) bool { return c.rings[ids[i]].ID < c.rings[ids[j]].ID })
	for _, i := range ids {
		p := c.rings[i]
		fmt.Fprintf(b, "r%s:%s:%d/%d/%d;", p.ID, strings.Join(p.Groups, ","),
			p.Gate.minCompliant(), p.Gate.maxFailed(), p.Gate.maxWait())
		for _, st := range p.States {
			fmt.Fprintf(b, "%d", st.Started.UnixNano())
			if st.Promoted != nil {
				fmt.Fprintf(b, "+%d", st.Promoted.At.UnixNano())
			}
			b.WriteByte(',')
		}
	}
}
