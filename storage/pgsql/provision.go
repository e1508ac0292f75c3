package pgsql

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/storage"
)

// ProvisionAgent implements storage.AgentStore: the command that carries
// the secret and the secret hash are written in one transaction, both or
// neither.
func (s *Store) ProvisionAgent(ctx context.Context, id, hash string, cmd *mdm.Command, now time.Time) error {
	if err := storage.CheckProvision(id, hash, cmd); err != nil {
		return err
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := enqueue(ctx, tx, []string{id}, cmd, now); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, putAgentSecretSQL, id, hash, ts(now))
		if err != nil {
			return fmt.Errorf("put agent secret of %s: %w", id, err)
		}
		return nil
	})
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return fmt.Errorf("device %s: %w", id, storage.ErrNotFound)
	case errors.Is(err, storage.ErrExists):
		return fmt.Errorf("command %s for %s: %w", cmd.UUID, id, storage.ErrExists)
	}
	return err
}
