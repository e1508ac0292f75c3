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

var _ scheduler.PauseStore = (*Store)(nil)

// PutPause implements scheduler.PauseStore.
func (s *Store) PutPause(ctx context.Context, p scheduler.Pause, audit *scheduler.AuditEntry) error {
	raw, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode pause: %w", err)
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if p.GroupID != scheduler.FleetPause {
			ok, err := lockGroup(ctx, tx, p.GroupID)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("group %s: %w", p.GroupID, storage.ErrNotFound)
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO ms_pauses (group_id, record) VALUES ($1, $2)
			ON CONFLICT (group_id) DO UPDATE SET record = EXCLUDED.record`, p.GroupID, string(raw)); err != nil {
			return err
		}
		return writeAudit(ctx, tx, audit)
	})
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("store pause: %w", err)
	}
	return err
}

// DeletePause implements scheduler.PauseStore.
func (s *Store) DeletePause(ctx context.Context, group string, audit *scheduler.AuditEntry) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM ms_pauses WHERE group_id = $1`, group)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("pause of %q: %w", group, storage.ErrNotFound)
		}
		return writeAudit(ctx, tx, audit)
	})
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("delete pause: %w", err)
	}
	return err
}

// Pauses implements scheduler.PauseStore.
func (s *Store) Pauses(ctx context.Context) ([]scheduler.Pause, error) {
	rows, err := s.pool.Query(ctx, `SELECT record FROM ms_pauses ORDER BY group_id`)
	if err != nil {
		return nil, fmt.Errorf("load pauses: %w", err)
	}
	defer rows.Close()
	var out []scheduler.Pause
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, fmt.Errorf("load pauses: %w", err)
		}
		var p scheduler.Pause
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, fmt.Errorf("decode pause: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}
