package bolt

import (
	"context"
	"errors"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// EnqueueAudited queues cmd for ids and appends a to the audit log in the
// same transaction: an admin's enqueue is one commit instead of two (each
// commit writes and allocates a 16 KB meta page; issue 24). Nothing is
// written if either part fails.
func (s *Store) EnqueueAudited(ctx context.Context, ids []string, cmd *mdm.Command, now time.Time, a *scheduler.AuditEntry) error {
	if a == nil || a.Action == "" {
		return errors.New("enqueue audited: an audit entry with an action is required")
	}
	return s.db.Batch(func(tx *bbolt.Tx) error {
		if err := s.enqueue(tx, ids, cmd, now); err != nil {
			return err
		}
		return writeAudit(tx, a)
	})
}
