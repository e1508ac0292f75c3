package pgsql

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sundial-mdm/sundial/storage"
)

var _ storage.WebhookOnceStore = (*Store)(nil)

// EnqueueWebhookOnce implements storage.WebhookOnceStore.
func (s *Store) EnqueueWebhookOnce(ctx context.Context, eventID string, keepUntil time.Time, ds []storage.WebhookDelivery) (bool, error) {
	if err := storage.CheckWebhookOnce(eventID, ds); err != nil {
		return false, err
	}
	first := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO webhook_once (event_id, keep_until) VALUES ($1, $2)
			ON CONFLICT (event_id) DO NOTHING`, eventID, keepUntil)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		first = true
		return enqueueWebhooksTx(ctx, tx, ds)
	})
	if err != nil {
		return false, fmt.Errorf("enqueue webhook once: %w", err)
	}
	return first, nil
}

// PruneWebhookOnce implements storage.WebhookOnceStore.
func (s *Store) PruneWebhookOnce(ctx context.Context, now time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM webhook_once WHERE keep_until < $1`, now)
	if err != nil {
		return 0, fmt.Errorf("prune webhook once: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
