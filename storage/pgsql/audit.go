package pgsql

import (
	"context"
	"errors"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// AppendAudit writes an audit entry for a change made outside the Managed
// OS store (commands, API keys, the push certificate, the catalog) and sets
// its Seq.
func (s *Store) AppendAudit(ctx context.Context, a *scheduler.AuditEntry) error {
	if a == nil || a.Action == "" {
		return errors.New("append audit: an entry with an action is required")
	}
	return writeAudit(ctx, s.pool, a)
}
