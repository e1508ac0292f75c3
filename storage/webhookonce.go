package storage

import (
	"context"
	"errors"
	"time"
)

// WebhookOnceStore emits events that must go out once per event ID even
// after their deliveries were acknowledged and left the outbox (a release
// the catalog learned, an exception about to expire): it keeps a ledger
// of the event IDs emitted.
type WebhookOnceStore interface {
	// EnqueueWebhookOnce records eventID in the ledger until keepUntil and
	// stores ds (deliveries of that event) in one transaction. If eventID
	// is already recorded it stores nothing and reports false.
	EnqueueWebhookOnce(ctx context.Context, eventID string, keepUntil time.Time, ds []WebhookDelivery) (bool, error)
	// PruneWebhookOnce forgets the event IDs kept until before now and
	// returns how many went.
	PruneWebhookOnce(ctx context.Context, now time.Time) (int, error)
}

// CheckWebhookOnce rejects a call EnqueueWebhookOnce must refuse.
func CheckWebhookOnce(eventID string, ds []WebhookDelivery) error {
	if eventID == "" || len(eventID) > 64 {
		return errors.New("webhook event: ID must be 1-64 bytes")
	}
	for i := range ds {
		if err := CheckWebhookDelivery(&ds[i]); err != nil {
			return err
		}
		if ds[i].EventID != eventID {
			return errors.New("webhook event: a delivery of another event")
		}
	}
	return nil
}
