package storage

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"
)

// WebhookDelivery is one event waiting to be POSTed to one endpoint. The
// outbox holds one per (event, endpoint) so each endpoint retries on its own.
type WebhookDelivery struct {
	EventID  string          `json:"event_id"`
	Endpoint string          `json:"endpoint"`
	Type     string          `json:"type"`
	Created  time.Time       `json:"created"`
	Body     json.RawMessage `json:"body"`
	Attempts int             `json:"attempts"`
	NextAt   time.Time       `json:"next_at"`
	LastErr  string          `json:"last_error,omitempty"`
}

// Caps on what the outbox accepts, so one bad caller cannot grow it.
const (
	MaxWebhookBody  = 64 << 10
	MaxWebhookError = 256
)

// CheckWebhookDelivery rejects a delivery the outbox must not store.
func CheckWebhookDelivery(d *WebhookDelivery) error {
	switch {
	case d.EventID == "" || len(d.EventID) > 64:
		return errors.New("webhook delivery: event ID must be 1-64 bytes")
	case d.Endpoint == "" || len(d.Endpoint) > 64:
		return errors.New("webhook delivery: endpoint must be 1-64 bytes")
	case d.Type == "" || len(d.Type) > 64:
		return errors.New("webhook delivery: type must be 1-64 bytes")
	case len(d.Body) == 0 || len(d.Body) > MaxWebhookBody:
		return errors.New("webhook delivery: body must be 1 byte to 64 KiB")
	case !json.Valid(d.Body):
		return errors.New("webhook delivery: body is not JSON")
	}
	return nil
}

// WebhookOutbox is the durable queue the webhook worker drains. Deliveries
// survive restarts; a delivery leaves only when acknowledged or pruned.
type WebhookOutbox interface {
	// EnqueueWebhooks stores deliveries (all or none). Re-enqueueing an
	// existing (event, endpoint) pair leaves the stored one unchanged.
	EnqueueWebhooks(ctx context.Context, ds []WebhookDelivery) error
	// DueWebhooks returns up to limit deliveries with NextAt <= now, oldest
	// NextAt first.
	DueWebhooks(ctx context.Context, now time.Time, limit int) ([]WebhookDelivery, error)
	// AckWebhook removes a delivered delivery; an unknown one is not an error
	// (another replica may have delivered and acked it).
	AckWebhook(ctx context.Context, eventID, endpoint string) error
	// RetryWebhook records a failed attempt and when to try next.
	RetryWebhook(ctx context.Context, eventID, endpoint string, attempts int, next time.Time, lastErr string) error
	// PruneWebhooks drops deliveries created before olderThan and, per
	// endpoint, all but the newest maxPerEndpoint; it returns how many went.
	PruneWebhooks(ctx context.Context, olderThan time.Time, maxPerEndpoint int) (int, error)
}

// WebhooksToPrune picks the deliveries PruneWebhooks drops: those created
// before olderThan, then per endpoint all but the newest maxPerEndpoint
// (maxPerEndpoint <= 0: no count bound).
func WebhooksToPrune(all []WebhookDelivery, olderThan time.Time, maxPerEndpoint int) []WebhookDelivery {
	var drop []WebhookDelivery
	per := map[string][]WebhookDelivery{}
	for _, d := range all {
		if d.Created.Before(olderThan) {
			drop = append(drop, d)
			continue
		}
		per[d.Endpoint] = append(per[d.Endpoint], d)
	}
	if maxPerEndpoint <= 0 {
		return drop
	}
	for _, ds := range per {
		if len(ds) <= maxPerEndpoint {
			continue
		}
		slices.SortFunc(ds, func(a, b WebhookDelivery) int {
			if c := a.Created.Compare(b.Created); c != 0 {
				return c
			}
			return strings.Compare(a.EventID, b.EventID)
		})
		drop = append(drop, ds[:len(ds)-maxPerEndpoint]...)
	}
	return drop
}

// WebhookEndpoint is an admin-configured receiver. Secret is sealed
// (internal/seal) by the caller; the store never sees it in the clear.
type WebhookEndpoint struct {
	ID      string    `json:"id"`
	URL     string    `json:"url"`
	Events  []string  `json:"events,omitempty"` // none: every type
	Secret  []byte    `json:"secret"`           // sealed
	Created time.Time `json:"created"`
}

// Wants reports whether the endpoint subscribes to events of type typ.
func (e *WebhookEndpoint) Wants(typ string) bool {
	return len(e.Events) == 0 || slices.Contains(e.Events, typ)
}

// MaxWebhookEndpoints caps how many endpoints an installation configures.
const MaxWebhookEndpoints = 32

// WebhookEndpointStore keeps the endpoints.
type WebhookEndpointStore interface {
	// PutWebhookEndpoint creates or replaces an endpoint. Beyond
	// MaxWebhookEndpoints a new one is refused (ErrWebhookLimit).
	PutWebhookEndpoint(ctx context.Context, e WebhookEndpoint) error
	// WebhookEndpoints lists endpoints by ID.
	WebhookEndpoints(ctx context.Context) ([]WebhookEndpoint, error)
	// DeleteWebhookEndpoint removes an endpoint and its pending deliveries;
	// an unknown ID gives ErrNotFound.
	DeleteWebhookEndpoint(ctx context.Context, id string) error
}

// ErrWebhookLimit refuses an endpoint beyond MaxWebhookEndpoints.
var ErrWebhookLimit = errors.New("too many webhook endpoints")

// CheckWebhookEndpoint rejects an endpoint the store must not keep.
func CheckWebhookEndpoint(e *WebhookEndpoint) error {
	switch {
	case e.ID == "" || len(e.ID) > 64:
		return errors.New("webhook endpoint: ID must be 1-64 bytes")
	case len(e.URL) > 2048 || !(strings.HasPrefix(e.URL, "https://") || strings.HasPrefix(e.URL, "http://")):
		return errors.New("webhook endpoint: URL must be http(s) and at most 2048 bytes")
	case len(e.Secret) == 0 || len(e.Secret) > 256:
		return errors.New("webhook endpoint: sealed secret must be 1-256 bytes")
	case len(e.Events) > 16:
		return errors.New("webhook endpoint: at most 16 event types")
	}
	return nil
}
