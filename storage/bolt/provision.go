package bolt

import (
	"context"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/storage"
)

// ProvisionAgent implements storage.AgentStore: the secret hash and the
// command that carries the secret are written in one transaction, so an
// enrolment pays for one commit instead of two and a crash cannot leave
// one without the other.
func (s *Store) ProvisionAgent(ctx context.Context, id, hash string, cmd *mdm.Command, now time.Time) error {
	if err := storage.CheckProvision(id, hash, cmd); err != nil {
		return err
	}
	return s.db.Batch(func(tx *bbolt.Tx) error {
		if tx.Bucket(bDevices).Get([]byte(id)) == nil {
			return fmt.Errorf("device %s: %w", id, storage.ErrNotFound)
		}
		if err := s.enqueuePacked(tx, []string{id}, cmd, nil, now); err != nil {
			return err
		}
		return putAgentSecret(tx, id, hash, now)
	})
}
