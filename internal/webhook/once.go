package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// OnceStore is what EmitOnce needs: the endpoints and the ledger of events
// emitted once.
type OnceStore interface {
	Endpoints
	EnqueueWebhooksOnce(ctx context.Context, events []storage.WebhookOnceEvent) (int, error)
}

// EmitOnce queues events for the endpoints subscribed to their types, in
// one transaction, skipping those whose ID was queued before (the ledger
// keeps each new ID until keepUntil), and returns how many it queued. An
// event no endpoint wants is not recorded, so an endpoint added later can
// still get it.
func EmitOnce(ctx context.Context, s OnceStore, events []Event, keepUntil time.Time) (int, error) {
	oe, err := OnceEvents(ctx, s, events, keepUntil)
	if err != nil || len(oe) == 0 {
		return 0, err
	}
	return s.EnqueueWebhooksOnce(ctx, oe)
}

// onceID is a deterministic event ID: key itself when it fits the
// outbox's 64 bytes, else prefix and a hash of key.
func onceID(prefix, key string) string {
	if len(key) <= 64 {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return prefix + hex.EncodeToString(sum[:16])
}

// ReleaseData is the data of catalog.new_release.
type ReleaseData struct {
	Version      string    `json:"version"` // with a supplemental suffix such as "(a)"
	Build        string    `json:"build,omitempty"`
	PostingDate  time.Time `json:"posting_date"`
	Supplemental bool      `json:"supplemental,omitempty"`
	Source       string    `json:"source"` // the feed ("gdmf", "sofa") or "manual"
}

// ReleaseKeep is how long the ledger remembers a release it announced: a
// release re-learned within it (removed and added again, or synced by a
// replica whose catalog lagged) is not announced twice.
const ReleaseKeep = 400 * 24 * time.Hour

// ReleaseEvent is the catalog.new_release event of a release the catalog
// learned from source. Its ID is the same for the same version and build,
// so every replica and every retry names it alike.
func ReleaseEvent(r *catalog.Release, source string, now time.Time) (Event, error) {
	v := r.Version.String()
	if r.VersionExtra != "" {
		v += " " + r.VersionExtra
	}
	kind := ""
	if r.Supplemental {
		kind = ":supplemental"
	}
	e, err := New(TypeCatalogRelease, now, ReleaseData{Version: v, Build: r.Build, PostingDate: r.PostingDate,
		Supplemental: r.Supplemental, Source: source})
	if err != nil {
		return Event{}, err
	}
	e.ID = onceID(TypeCatalogRelease+":", fmt.Sprintf("%s:%s:%s%s", TypeCatalogRelease, v, r.Build, kind))
	return e, nil
}

// ExpiringWithin is how far ahead an exception's expiry is announced.
const ExpiringWithin = 24 * time.Hour

// ExpiringEvent is the exception.expiring event of an exception record.
// Its ID is derived from the scope, the device or group and the expiry, so
// the same expiry is announced once and an extended one again.
func ExpiringEvent(rec *scheduler.ExceptionRecord, now time.Time) (Event, error) {
	e, err := New(TypeExceptionExpiring, now, rec)
	if err != nil {
		return Event{}, err
	}
	key := fmt.Sprintf("%s\x00%s\x00%s", rec.Scope, rec.ID, rec.Exception.Expires.UTC().Format(time.RFC3339Nano))
	sum := sha256.Sum256([]byte(key))
	e.ID = TypeExceptionExpiring + ":" + hex.EncodeToString(sum[:16])
	return e, nil
}

// ExpiringStore is what CheckExpiring reads and writes.
type ExpiringStore interface {
	OnceStore
	Exceptions(ctx context.Context) ([]scheduler.ExceptionRecord, error)
	PruneWebhookOnce(ctx context.Context, now time.Time) (int, error)
}

// CheckExpiring queues exception.expiring, once each, for the exceptions
// that expire after now and at most within later, in one transaction, and
// forgets the ledger entries whose keep time has passed. It returns how
// many it queued.
func CheckExpiring(ctx context.Context, s ExpiringStore, now time.Time, within time.Duration) (int, error) {
	if _, err := s.PruneWebhookOnce(ctx, now); err != nil {
		return 0, err
	}
	recs, err := s.Exceptions(ctx)
	if err != nil {
		return 0, err
	}
	var events []Event
	for i := range recs {
		exp := recs[i].Exception.Expires
		if !exp.After(now) || exp.After(now.Add(within)) {
			continue
		}
		ev, err := ExpiringEvent(&recs[i], now)
		if err != nil {
			return 0, fmt.Errorf("exception %s %s: %w", recs[i].Scope, recs[i].ID, err)
		}
		events = append(events, ev)
	}
	// Kept a day past the latest expiry in the window: the same expiry
	// cannot come into the window again after that.
	return EmitOnce(ctx, s, events, now.Add(within+24*time.Hour))
}

// OnceEvents fans events out to the endpoints subscribed to their types,
// for a storage.CatalogAnnounceStore call (each ID kept until keepUntil).
// An event no endpoint wants is left out, so nothing records it.
func OnceEvents(ctx context.Context, s Endpoints, events []Event, keepUntil time.Time) ([]storage.WebhookOnceEvent, error) {
	if len(events) == 0 {
		return nil, nil
	}
	eps, err := s.WebhookEndpoints(ctx)
	if err != nil || len(eps) == 0 {
		return nil, err
	}
	var out []storage.WebhookOnceEvent
	for _, e := range events {
		ds, err := Deliveries([]Event{e}, eps)
		if err != nil {
			return nil, err
		}
		if len(ds) > 0 {
			out = append(out, storage.WebhookOnceEvent{ID: e.ID, KeepUntil: keepUntil, Deliveries: ds})
		}
	}
	return out, nil
}

// ReleaseEvents is the catalog.new_release events of releases the catalog
// learned from source.
func ReleaseEvents(rels []catalog.Release, source string, now time.Time) ([]Event, error) {
	out := make([]Event, 0, len(rels))
	for i := range rels {
		e, err := ReleaseEvent(&rels[i], source, now)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}
