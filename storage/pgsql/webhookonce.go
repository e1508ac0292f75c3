package pgsql

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sundial-mdm/sundial/storage"
)

var _ storage.WebhookOnceStore = (*Store)(nil)

// EnqueueWebhooksOnce implements storage.WebhookOnceStore.
func (s *Store) EnqueueWebhooksOnce(ctx context.Context, events []storage.WebhookOnceEvent) (int, error) {
	return s.putAnnounced(ctx, events, nil)
}

// enqueueOnceTx records eventID in the ledger and stores its checked
// deliveries inside tx, unless the ledger already has it.
func enqueueOnceTx(ctx context.Context, tx pgx.Tx, eventID string, keepUntil time.Time, ds []storage.WebhookDelivery) (bool, error) {
	tag, err := tx.Exec(ctx, `INSERT INTO webhook_once (event_id, keep_until) VALUES ($1, $2)
		ON CONFLICT (event_id) DO NOTHING`, eventID, keepUntil)
	if err != nil || tag.RowsAffected() == 0 {
		return false, err
	}
	return true, enqueueWebhooksTx(ctx, tx, ds)
}

// putAnnounced runs put (if any) and queues events once, in one
// transaction, and returns how many events it queued.
func (s *Store) putAnnounced(ctx context.Context, events []storage.WebhookOnceEvent, put func(tx pgx.Tx) error) (int, error) {
	if err := storage.CheckWebhookOnceEvents(events); err != nil {
		return 0, err
	}
	if put == nil && len(events) == 0 {
		return 0, nil
	}
	n := 0
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		n = 0
		if put != nil {
			if err := put(tx); err != nil {
				return err
			}
		}
		for i := range events {
			first, err := enqueueOnceTx(ctx, tx, events[i].ID, events[i].KeepUntil, events[i].Deliveries)
			if err != nil {
				return fmt.Errorf("enqueue webhook once: %w", err)
			}
			if first {
				n++
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

var _ storage.CatalogAnnounceStore = (*Store)(nil)

// PutCatalogFeedAnnounced implements storage.CatalogAnnounceStore.
func (s *Store) PutCatalogFeedAnnounced(ctx context.Context, kind string, body []byte, now time.Time, events []storage.WebhookOnceEvent) error {
	_, err := s.putAnnounced(ctx, events, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO catalog_feeds (kind, body, updated_at) VALUES ($1, $2, $3)
			ON CONFLICT (kind) DO UPDATE SET body = EXCLUDED.body, updated_at = EXCLUDED.updated_at`, kind, body, now)
		if err != nil {
			return fmt.Errorf("store catalog feed: %w", err)
		}
		return nil
	})
	return err
}

// PutManualReleaseAnnounced implements storage.CatalogAnnounceStore.
func (s *Store) PutManualReleaseAnnounced(ctx context.Context, version string, rel []byte, events []storage.WebhookOnceEvent) error {
	_, err := s.putAnnounced(ctx, events, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO catalog_manual (version, release) VALUES ($1, $2)
			ON CONFLICT (version) DO UPDATE SET release = EXCLUDED.release`, version, rel)
		if err != nil {
			return fmt.Errorf("store manual release: %w", err)
		}
		return nil
	})
	return err
}

// PruneWebhookOnce implements storage.WebhookOnceStore.
func (s *Store) PruneWebhookOnce(ctx context.Context, now time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM webhook_once WHERE keep_until < $1`, now)
	if err != nil {
		return 0, fmt.Errorf("prune webhook once: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
