package bolt

import (
	"context"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// AppendAudit writes one audit entry on its own (for admin actions that
// change nothing else in a transaction, such as ABM token uploads).
func (s *Store) AppendAudit(ctx context.Context, a *scheduler.AuditEntry) error {
	return s.db.Update(func(tx *bbolt.Tx) error { return writeAudit(tx, a) })
}
