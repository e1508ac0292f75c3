package pgsql

import (
	"context"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// AppendAudit writes one audit entry on its own (for admin actions that
// change nothing else in a transaction, such as ABM token uploads).
func (s *Store) AppendAudit(ctx context.Context, a *scheduler.AuditEntry) error {
	return writeAudit(ctx, s.pool, a)
}
