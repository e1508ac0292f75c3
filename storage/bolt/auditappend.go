package bolt

import (
	"context"
	"errors"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// AppendAudit implements scheduler.AuditAppender: an audit entry for an
// admin action that changes no other record here (a retry, whose change is
// committed to the update states by the scheduler).
func (s *Store) AppendAudit(ctx context.Context, a *scheduler.AuditEntry) error {
	if a == nil {
		return errors.New("append audit: nil entry")
	}
	return s.db.Update(func(tx *bbolt.Tx) error { return writeAudit(tx, a) })
}
