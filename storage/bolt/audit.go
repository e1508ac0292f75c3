package bolt

import (
	"context"
	"errors"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// AppendAudit writes an audit entry for a change made outside the Managed
// OS store (commands, API keys, the push certificate, the catalog) and sets
// its Seq.
func (s *Store) AppendAudit(ctx context.Context, a *scheduler.AuditEntry) error {
	if a == nil || a.Action == "" {
		return errors.New("append audit: an entry with an action is required")
	}
	return s.db.Update(func(tx *bbolt.Tx) error { return writeAudit(tx, a) })
}
