package pgsql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/sundial-mdm/sundial/internal/webhook"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// jsonTable is a table of admin records kept as JSON, one row per key
// (pauses, ring plans). Its names are constants of this package, never
// input.
type jsonTable struct {
	table, key string // table and key column
	what       string // the record's name in errors
}

// put stores v under key with its audit entry, in one transaction, after
// locking each of groups (ErrNotFound if one does not exist).
func (t jsonTable) put(ctx context.Context, s *Store, key string, v any, groups []string, audit *scheduler.AuditEntry) error {
	return t.putEvents(ctx, s, key, v, groups, audit, nil)
}

// putEvents is put that also queues events for the webhook endpoints in
// the same transaction.
func (t jsonTable) putEvents(ctx context.Context, s *Store, key string, v any, groups []string, audit *scheduler.AuditEntry, events []webhook.Event) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", t.what, err)
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		for _, g := range groups {
			ok, err := lockGroup(ctx, tx, g)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("group %s: %w", g, storage.ErrNotFound)
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+t.table+` (`+t.key+`, record) VALUES ($1, $2)
			ON CONFLICT (`+t.key+`) DO UPDATE SET record = EXCLUDED.record`, key, string(raw)); err != nil {
			return err
		}
		if err := enqueueEventsTx(ctx, tx, events); err != nil {
			return err
		}
		return writeAudit(ctx, tx, audit)
	})
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("store %s: %w", t.what, err)
	}
	return err
}

// delete removes key's record with its audit entry (ErrNotFound if none).
func (t jsonTable) delete(ctx context.Context, s *Store, key string, audit *scheduler.AuditEntry) error {
	return t.deleteEvents(ctx, s, key, audit, nil)
}

// deleteEvents is delete that also queues the events that events derives
// from the removed record, in the same transaction.
func (t jsonTable) deleteEvents(ctx context.Context, s *Store, key string, audit *scheduler.AuditEntry, events func(old []byte) ([]webhook.Event, error)) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var old []byte
		err := tx.QueryRow(ctx, `DELETE FROM `+t.table+` WHERE `+t.key+` = $1 RETURNING record`, key).Scan(&old)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%s %q: %w", t.what, key, storage.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if events != nil {
			evs, err := events(old)
			if err != nil {
				return err
			}
			if err := enqueueEventsTx(ctx, tx, evs); err != nil {
				return err
			}
		}
		return writeAudit(ctx, tx, audit)
	})
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("delete %s: %w", t.what, err)
	}
	return err
}

// loadJSON reads every record of t in key order.
func loadJSON[T any](ctx context.Context, s *Store, t jsonTable) ([]T, error) {
	rows, err := s.pool.Query(ctx, `SELECT record FROM `+t.table+` ORDER BY `+t.key)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", t.what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, fmt.Errorf("load %s: %w", t.what, err)
		}
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("decode %s: %w", t.what, err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
