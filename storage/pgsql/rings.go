package pgsql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

var _ scheduler.RingStore = (*Store)(nil)

// PutRingPlan implements scheduler.RingStore.
func (s *Store) PutRingPlan(ctx context.Context, p scheduler.RingPlan, audit *scheduler.AuditEntry) error {
	if err := p.Validate(); err != nil {
		return err
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode ring plan: %w", err)
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		for _, g := range p.Groups {
			ok, err := lockGroup(ctx, tx, g)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("group %s: %w", g, storage.ErrNotFound)
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO ms_ring_plans (id, record) VALUES ($1, $2)
			ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record`, p.ID, string(raw)); err != nil {
			return err
		}
		return writeAudit(ctx, tx, audit)
	})
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("store ring plan: %w", err)
	}
	return err
}

// DeleteRingPlan implements scheduler.RingStore.
func (s *Store) DeleteRingPlan(ctx context.Context, id string, audit *scheduler.AuditEntry) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM ms_ring_plans WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("ring plan %q: %w", id, storage.ErrNotFound)
		}
		return writeAudit(ctx, tx, audit)
	})
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("delete ring plan: %w", err)
	}
	return err
}

// RingPlans implements scheduler.RingStore.
func (s *Store) RingPlans(ctx context.Context) ([]scheduler.RingPlan, error) {
	rows, err := s.pool.Query(ctx, `SELECT record FROM ms_ring_plans ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("load ring plans: %w", err)
	}
	defer rows.Close()
	var out []scheduler.RingPlan
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, fmt.Errorf("load ring plans: %w", err)
		}
		var p scheduler.RingPlan
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, fmt.Errorf("decode ring plan: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}
