package scheduler

import (
	"context"
	"fmt"
	"slices"

	"github.com/sundial-mdm/sundial/storage"
)

func (m *Manager) ringStore() (RingStore, error) {
	rs, ok := m.store.(RingStore)
	if !ok {
		return nil, fmt.Errorf("%w: this store cannot keep ring plans", ErrInvalid)
	}
	return rs, nil
}

func (m *Manager) ringPlan(ctx context.Context, rs RingStore, id string) (*RingPlan, error) {
	list, err := rs.RingPlans(ctx)
	if err != nil {
		return nil, err
	}
	for i := range list {
		if list[i].ID == id {
			return &list[i], nil
		}
	}
	return nil, nil
}

// SetRingPlan creates or replaces a ring plan (audited). A group kept from
// the old plan keeps its progress (start, promotion); a new one starts
// afresh.
func (m *Manager) SetRingPlan(ctx context.Context, actor string, p RingPlan) (*RingPlan, error) {
	if err := checkActor(actor); err != nil {
		return nil, err
	}
	p.States = nil
	if err := p.Validate(); err != nil {
		return nil, err
	}
	rs, err := m.ringStore()
	if err != nil {
		return nil, err
	}
	list, err := rs.RingPlans(ctx)
	if err != nil {
		return nil, err
	}
	var old *RingPlan
	for i := range list {
		if list[i].ID == p.ID {
			old = &list[i]
			continue
		}
		// A group gated by two plans would have two rings before it.
		for _, g := range list[i].Groups {
			if slices.Contains(p.Groups, g) {
				return nil, fmt.Errorf("%w: group %s is already in ring plan %s", ErrInvalid, g, list[i].ID)
			}
		}
	}
	p.States = make([]RingState, len(p.Groups))
	if old != nil {
		for i, g := range old.Groups {
			for j, h := range p.Groups {
				if g == h && i < len(old.States) {
					p.States[j] = old.States[i]
				}
			}
		}
	}
	a, err := NewAuditEntry(m.clock.Now().UTC(), actor, "rings.set", "rings/"+p.ID, old, p)
	if err != nil {
		return nil, err
	}
	if err := rs.PutRingPlan(ctx, p, a); err != nil {
		return nil, err
	}
	m.reevaluate()
	return &p, nil
}

// PromoteRing opens by hand the gate after group in plan id (audited): the
// next ring's notice starts at the next pass whatever group's tally.
func (m *Manager) PromoteRing(ctx context.Context, actor, id, group string) (*RingPlan, error) {
	if err := checkActor(actor); err != nil {
		return nil, err
	}
	rs, err := m.ringStore()
	if err != nil {
		return nil, err
	}
	p, err := m.ringPlan(ctx, rs, id)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, fmt.Errorf("ring plan %q: %w", truncate(id), storage.ErrNotFound)
	}
	i := -1
	for j, g := range p.Groups {
		if g == group {
			i = j
		}
	}
	if i < 0 || i == len(p.Groups)-1 {
		return nil, fmt.Errorf("%w: group %q is not a ring with a ring after it in plan %s", ErrInvalid, truncate(group), p.ID)
	}
	old := *p
	old.States = append([]RingState(nil), p.States...)
	if len(p.States) != len(p.Groups) {
		p.States = make([]RingState, len(p.Groups))
	}
	now := m.clock.Now().UTC()
	p.States[i].Promoted = &Promotion{At: now, Actor: actor}
	a, err := NewAuditEntry(now, actor, "rings.promote", "rings/"+p.ID+"/"+group, old, p)
	if err != nil {
		return nil, err
	}
	if err := rs.PutRingPlan(ctx, *p, a); err != nil {
		return nil, err
	}
	m.reevaluate()
	return p, nil
}

// RingPlans lists every ring plan, by ID (none if the store cannot keep
// them).
func (m *Manager) RingPlans(ctx context.Context) ([]RingPlan, error) {
	rs, ok := m.store.(RingStore)
	if !ok {
		return nil, nil
	}
	return rs.RingPlans(ctx)
}

// DeleteRingPlan removes plan id (audited; storage.ErrNotFound if none):
// its groups stop being gated, and Macs it held start their notice at the
// next pass.
func (m *Manager) DeleteRingPlan(ctx context.Context, actor, id string) error {
	if err := checkActor(actor); err != nil {
		return err
	}
	rs, err := m.ringStore()
	if err != nil {
		return err
	}
	old, err := m.ringPlan(ctx, rs, id)
	if err != nil {
		return err
	}
	if old == nil {
		return fmt.Errorf("ring plan %q: %w", truncate(id), storage.ErrNotFound)
	}
	a, err := NewAuditEntry(m.clock.Now().UTC(), actor, "rings.remove", "rings/"+old.ID, old, nil)
	if err != nil {
		return err
	}
	if err := rs.DeleteRingPlan(ctx, old.ID, a); err != nil {
		return err
	}
	m.reevaluate()
	return nil
}
