package bolt

import (
	"context"
	"encoding/json"
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
	return s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bMSRings)
		if b.Get([]byte(id)) == nil {
			return fmt.Errorf("ring plan %q: %w", id, storage.ErrNotFound)
		}
		if err := b.Delete([]byte(id)); err != nil {
			return err
		}
		return writeAudit(tx, audit)
	})
}

// RingPlans implements scheduler.RingStore.
func (s *Store) RingPlans(ctx context.Context) ([]scheduler.RingPlan, error) {
	var out []scheduler.RingPlan
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bMSRings).ForEach(func(k, v []byte) error {
			var p scheduler.RingPlan
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("decode ring plan: %w", err)
			}
			out = append(out, p)
			return nil
		})
	})
	return out, err
}
