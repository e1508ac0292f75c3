package pgsql

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// EnqueueAudited queues cmd for ids and appends a to the audit log in one
// transaction, so an admin's enqueue and its audit entry are written
// together or not at all (issue 24: one commit instead of two).
func (s *Store) EnqueueAudited(ctx context.Context, ids []string, cmd *mdm.Command, now time.Time, a *scheduler.AuditEntry) error {
	if a == nil || a.Action == "" {
		return errors.New("enqueue audited: an audit entry with an action is required")
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := enqueue(ctx, tx, ids, cmd, now); err != nil {
			return err
		}
		return writeAudit(ctx, tx, a)
	})
	// Name the enrollment at fault, as Enqueue does.
	if errors.Is(err, storage.ErrNotFound) {
		if e := missingDevice(ctx, s.pool, ids); e != nil && errors.Is(e, storage.ErrNotFound) {
			return fmt.Errorf("command %s: %w", cmd.UUID, e)
		}
	}
	return err
}
