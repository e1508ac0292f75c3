package storage

import (
	"context"
	"time"
)

// RetentionStore deletes old records in small batches, so that finished
// commands and update history do not grow forever. The leader calls it
// with a cursor and the next batch continues from there; each batch is
// one short write transaction, so writers are never blocked for long.
// Pending commands, update states, the audit log and everything else are
// never pruned.
type RetentionStore interface {
	// PruneCommands looks at up to limit commands in queue order after
	// cursor after ("" from the oldest) and deletes those that have left
	// the queue (a final status, or canceled) and were last updated before
	// before: record, body, result and index. It returns how many it
	// deleted and the cursor to continue from, "" when the scan has
	// reached commands queued at or after before (nothing older is left).
	PruneCommands(ctx context.Context, before time.Time, after string, limit int) (deleted int, next string, err error)
	// PruneHistory trims the update history of up to limit devices, in ID
	// order after cursor after ("" from the first), to each device's newest
	// keep transitions. It returns how many transitions it deleted and the
	// cursor to continue from, "" after the last device.
	PruneHistory(ctx context.Context, keep int, after string, limit int) (deleted int, next string, err error)
}
