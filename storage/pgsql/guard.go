package pgsql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

var _ storage.EnrollmentGuardStore = (*Store)(nil)

// EnrollmentGuard implements storage.EnrollmentGuardStore.
func (s *Store) EnrollmentGuard(ctx context.Context, id string) (*mdm.EnrollmentGuard, error) {
	var raw []byte
	err := s.pool.QueryRow(ctx, `SELECT g.guard FROM devices d LEFT JOIN enrollment_guards g ON g.id = d.id WHERE d.id = $1`, id).Scan(&raw)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, fmt.Errorf("device %s: %w", id, storage.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("read enrollment guard of %s: %w", id, err)
	}
	g := new(mdm.EnrollmentGuard)
	if raw != nil {
		if err := json.Unmarshal(raw, g); err != nil {
			return nil, fmt.Errorf("decode enrollment guard of %s: %w", id, err)
		}
	}
	return g, nil
}

// updateGuard locks the guard row of id (creating it first, so that two
// first updates do not both start from nothing), applies fn and writes it.
func updateGuard(ctx context.Context, tx pgx.Tx, id string, fn func(*mdm.EnrollmentGuard) error) error {
	_, err := tx.Exec(ctx, `INSERT INTO enrollment_guards (id, guard) VALUES ($1, '{}') ON CONFLICT (id) DO NOTHING`, id)
	if foreignKeyViolation(err) {
		return fmt.Errorf("device %s: %w", id, storage.ErrNotFound)
	}
	if err != nil {
		return err
	}
	var raw []byte
	if err := tx.QueryRow(ctx, `SELECT guard FROM enrollment_guards WHERE id = $1 FOR UPDATE`, id).Scan(&raw); err != nil {
		return err
	}
	g := new(mdm.EnrollmentGuard)
	if err := json.Unmarshal(raw, g); err != nil {
		return fmt.Errorf("decode enrollment guard of %s: %w", id, err)
	}
	if err := fn(g); err != nil {
		return err
	}
	if n := len(g.Events) - mdm.MaxEnrollmentEvents; n > 0 {
		g.Events = g.Events[n:]
	}
	enc, err := json.Marshal(g)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE enrollment_guards SET guard = $2 WHERE id = $1`, id, enc)
	return err
}

// UpdateEnrollmentGuard implements storage.EnrollmentGuardStore.
func (s *Store) UpdateEnrollmentGuard(ctx context.Context, id string, fn func(*mdm.EnrollmentGuard) error) error {
	return s.inTx(ctx, func(tx pgx.Tx) error { return updateGuard(ctx, tx, id, fn) })
}

// AllowReenroll lets the next Authenticate of id re-bind it to another
// certificate until `until`, recording who allowed it (audit.Actor, at
// audit.At) in the guard's history and in the audit log, in one
// transaction.
func (s *Store) AllowReenroll(ctx context.Context, id string, until time.Time, audit *scheduler.AuditEntry) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		err := updateGuard(ctx, tx, id, func(g *mdm.EnrollmentGuard) error {
			g.ReenrollUntil, g.ReenrollBy = until, audit.Actor
			g.AppendEvent(mdm.EnrollmentEvent{Kind: mdm.EventReenrollAllowed, At: audit.At, Actor: audit.Actor,
				Reason: "until " + until.UTC().Format(time.RFC3339)})
			return nil
		})
		if err != nil {
			return err
		}
		return writeAudit(ctx, tx, audit)
	})
}

// AuthenticateGuarded is Authenticate and UpdateEnrollmentGuard in one
// transaction.
func (s *Store) AuthenticateGuarded(ctx context.Context, id string, msg *mdm.CheckinMessage, certHash string, now time.Time, fn func(*mdm.EnrollmentGuard) error) error {
	return s.authenticate(ctx, id, msg, certHash, now, fn)
}
