package bolt

import (
	"context"
	"encoding/json"
	"fmt"

	bbolt "go.etcd.io/bbolt"

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

// PutPause implements scheduler.PauseStore.
func (s *Store) PutPause(ctx context.Context, p scheduler.Pause, audit *scheduler.AuditEntry) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		if p.GroupID != scheduler.FleetPause && !groupExists(tx, p.GroupID) {
			return fmt.Errorf("group %s: %w", p.GroupID, storage.ErrNotFound)
		}
		if err := putJSON(tx.Bucket(bMSPause), pauseKey(p.GroupID), p); err != nil {
			return err
		}
		return writeAudit(tx, audit)
	})
}

// DeletePause implements scheduler.PauseStore.
func (s *Store) DeletePause(ctx context.Context, group string, audit *scheduler.AuditEntry) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bMSPause)
		k := pauseKey(group)
		if b.Get(k) == nil {
			return fmt.Errorf("pause of %q: %w", group, storage.ErrNotFound)
		}
		if err := b.Delete(k); err != nil {
			return err
		}
		return writeAudit(tx, audit)
	})
}

// Pauses implements scheduler.PauseStore.
func (s *Store) Pauses(ctx context.Context) ([]scheduler.Pause, error) {
	var out []scheduler.Pause
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bMSPause).ForEach(func(k, v []byte) error {
			var p scheduler.Pause
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("decode pause: %w", err)
			}
			out = append(out, p)
			return nil
		})
	})
	return out, err
}
