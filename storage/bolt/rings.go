package bolt

import (
	"context"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// msrings holds the ring plans: key the plan ID, value the JSON plan.
var bMSRings = []byte("msrings")

func init() { allBuckets = append(allBuckets, bMSRings) }

var _ scheduler.RingStore = (*Store)(nil)

// PutRingPlan implements scheduler.RingStore.
func (s *Store) PutRingPlan(ctx context.Context, p scheduler.RingPlan, audit *scheduler.AuditEntry) error {
	if err := p.Validate(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		for _, g := range p.Groups {
			if !groupExists(tx, g) {
				return fmt.Errorf("group %s: %w", g, storage.ErrNotFound)
			}
		}
		if err := putJSON(tx.Bucket(bMSRings), []byte(p.ID), p); err != nil {
			return err
		}
		return writeAudit(tx, audit)
	})
}

// DeleteRingPlan implements scheduler.RingStore.
func (s *Store) DeleteRingPlan(ctx context.Context, id string, audit *scheduler.AuditEntry) error {
	return s.deleteAudited(bMSRings, []byte(id), fmt.Sprintf("ring plan %q", id), audit)
}

// RingPlans implements scheduler.RingStore.
func (s *Store) RingPlans(ctx context.Context) ([]scheduler.RingPlan, error) {
	return loadJSON[scheduler.RingPlan](s, bMSRings, "ring plan")
}
