package pgsql

import (
	"context"
	"errors"
	"fmt"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// AppendAudit implements scheduler.AuditAppender: an audit entry for an
// admin action that changes no other record here (a retry, whose change is
// committed to the update states by the scheduler).
func (s *Store) AppendAudit(ctx context.Context, a *scheduler.AuditEntry) error {
	if a == nil {
		return errors.New("append audit: nil entry")
	}
	if err := writeAudit(ctx, s.pool, a); err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	return nil
}
