package bolt

import (
	"context"
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
	return s.deleteAudited(bMSPause, pauseKey(group), fmt.Sprintf("pause of %q", group), audit)
}

// Pauses implements scheduler.PauseStore.
func (s *Store) Pauses(ctx context.Context) ([]scheduler.Pause, error) {
	return loadJSON[scheduler.Pause](s, bMSPause, "pause")
}
