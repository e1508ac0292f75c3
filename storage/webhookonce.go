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
	// EnqueueWebhooksOnce, in one transaction, records in the ledger the
	// ID of each event not yet there (kept until its KeepUntil) and stores
	// its deliveries; an event whose ID is already recorded is skipped. It
	// returns how many events it queued.
	EnqueueWebhooksOnce(ctx context.Context, events []WebhookOnceEvent) (int, error)
	// PruneWebhookOnce forgets the event IDs kept until before now and
	// returns how many went.
	PruneWebhookOnce(ctx context.Context, now time.Time) (int, error)
}

// CheckWebhookOnce rejects an event the ledger must refuse.
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

// WebhookOnceEvent is one event to queue once: its ID, how long the ledger
// keeps the ID, and its deliveries (all of that event).
type WebhookOnceEvent struct {
	ID         string
	KeepUntil  time.Time
	Deliveries []WebhookDelivery
}

// CatalogAnnounceStore stores a catalog change together with the
// catalog.new_release events it causes, in one transaction: the change is
// never stored without its events, nor its events queued without it.
type CatalogAnnounceStore interface {
	// PutCatalogFeedAnnounced is PutCatalogFeed plus each of events queued
	// as EnqueueWebhooksOnce would (an ID already in the ledger is skipped).
	PutCatalogFeedAnnounced(ctx context.Context, kind string, body []byte, now time.Time, events []WebhookOnceEvent) error
	// PutManualReleaseAnnounced is PutManualRelease plus events, likewise.
	PutManualReleaseAnnounced(ctx context.Context, version string, rel []byte, events []WebhookOnceEvent) error
}

// CheckWebhookOnceEvents checks every event of a WebhookOnceStore or
// CatalogAnnounceStore call.
func CheckWebhookOnceEvents(events []WebhookOnceEvent) error {
	for i := range events {
		if err := CheckWebhookOnce(events[i].ID, events[i].Deliveries); err != nil {
			return err
		}
	}
	return nil
}
