package bolt

import (
	"context"
	"encoding/json"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/internal/webhook"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// mspause holds the rollout pauses (the kill switch): key the group ID
// ("" for the fleet-wide pause is stored as "\x00"), value the JSON pause.
var bMSPause = []byte("mspause")

func init() { allBuckets = append(allBuckets, bMSPause) }

var _ scheduler.PauseStore = (*Store)(nil)

func pauseKey(group string) []byte {
	if group == scheduler.FleetPause {
		return []byte{0}
	}
	return []byte(group)
}

// PutPause implements scheduler.PauseStore; rollout.paused goes to the
// outbox in the same transaction.
func (s *Store) PutPause(ctx context.Context, p scheduler.Pause, audit *scheduler.AuditEntry) error {
	ev, err := webhook.PausedEvent(&p)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		if p.GroupID != scheduler.FleetPause && !groupExists(tx, p.GroupID) {
			return fmt.Errorf("group %s: %w", p.GroupID, storage.ErrNotFound)
		}
		if err := putJSON(tx.Bucket(bMSPause), pauseKey(p.GroupID), p); err != nil {
			return err
		}
		if err := enqueueEventsTx(tx, []webhook.Event{ev}); err != nil {
			return err
		}
		return writeAudit(tx, audit)
	})
}

// DeletePause implements scheduler.PauseStore; rollout.resumed, naming the
// pause that ends and the audit entry's actor, goes to the outbox in the
// same transaction.
func (s *Store) DeletePause(ctx context.Context, group string, audit *scheduler.AuditEntry) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bMSPause)
		v := b.Get(pauseKey(group))
		if v == nil {
			return fmt.Errorf("pause of %q: %w", group, storage.ErrNotFound)
		}
		var old scheduler.Pause
		if err := json.Unmarshal(v, &old); err != nil {
			return fmt.Errorf("decode pause of %q: %w", group, err)
		}
		actor, at := "", old.At
		if audit != nil {
			actor, at = audit.Actor, audit.At
		}
		ev, err := webhook.ResumedEvent(&old, actor, at)
		if err != nil {
			return err
		}
		if err := b.Delete(pauseKey(group)); err != nil {
			return err
		}
		if err := enqueueEventsTx(tx, []webhook.Event{ev}); err != nil {
			return err
		}
		return writeAudit(tx, audit)
	})
}

// Pauses implements scheduler.PauseStore.
func (s *Store) Pauses(ctx context.Context) ([]scheduler.Pause, error) {
	return loadJSON[scheduler.Pause](s, bMSPause, "pause")
}
