package pgsql

import (
	"context"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

var _ scheduler.RingStore = (*Store)(nil)

var ringPlansTable = jsonTable{table: "ms_ring_plans", key: "id", what: "ring plan"}

// PutRingPlan implements scheduler.RingStore.
func (s *Store) PutRingPlan(ctx context.Context, p scheduler.RingPlan, audit *scheduler.AuditEntry) error {
	if err := p.Validate(); err != nil {
		return err
	}
	return ringPlansTable.put(ctx, s, p.ID, p, p.Groups, audit)
}

// DeleteRingPlan implements scheduler.RingStore.
func (s *Store) DeleteRingPlan(ctx context.Context, id string, audit *scheduler.AuditEntry) error {
	return ringPlansTable.delete(ctx, s, id, audit)
}

// RingPlans implements scheduler.RingStore.
func (s *Store) RingPlans(ctx context.Context) ([]scheduler.RingPlan, error) {
	return loadJSON[scheduler.RingPlan](ctx, s, ringPlansTable)
}
