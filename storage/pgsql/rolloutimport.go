package pgsql

import (
	"context"
	"fmt"
	"time"

	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/migrate/record"
)

// Import of the webhook and reporting kinds whose rows differ from the
// bbolt records (see bolt's rolloutexport.go). Each record passes the check
// its store applies when it is written, so an import stores nothing a
// running server would refuse.

// ComplianceDays loads the daily compliance rows.
func (im *Importer) ComplianceDays(ctx context.Context, ds []storage.ComplianceDay) error {
	rows := make([][]any, 0, len(ds))
	for _, d := range ds {
		day, err := storage.ParseDay(d.Day)
		if err != nil {
			return fmt.Errorf("compliance day of group %q: %w", d.GroupID, err)
		}
		if _, err := storage.CheckComplianceDay(d.Day, []storage.ComplianceDay{d}); err != nil {
			return err
		}
		rows = append(rows, []any{day, d.GroupID, int64(d.Devices), int64(d.Managed), int64(d.Compliant)})
	}
	return im.copy(ctx, "compliance_days", []string{"day", "group_id", "devices", "managed", "compliant"}, rows)
}

// WebhookEndpoints loads webhook endpoints, their secrets as stored
// (sealed: the import never opens them).
func (im *Importer) WebhookEndpoints(ctx context.Context, es []storage.WebhookEndpoint) error {
	if len(es) > storage.MaxWebhookEndpoints {
		return storage.ErrWebhookLimit
	}
	rows := make([][]any, 0, len(es))
	for i := range es {
		e := &es[i]
		if err := storage.CheckWebhookEndpoint(e); err != nil {
			return err
		}
		events := e.Events
		if events == nil {
			events = []string{} // the column is NOT NULL, '{}' meaning every type
		}
		rows = append(rows, []any{e.ID, e.URL, events, e.Secret, e.Created})
	}
	return im.copy(ctx, "webhook_endpoints", []string{"id", "url", "events", "secret", "created"}, rows)
}

// WebhookOutbox loads pending webhook deliveries with their attempts, next
// try and last error.
func (im *Importer) WebhookOutbox(ctx context.Context, ds []storage.WebhookDelivery) error {
	rows := make([][]any, 0, len(ds))
	for i := range ds {
		d := &ds[i]
		if err := storage.CheckWebhookDelivery(d); err != nil {
			return err
		}
		lastErr := d.LastErr
		if len(lastErr) > storage.MaxWebhookError {
			lastErr = lastErr[:storage.MaxWebhookError]
		}
		rows = append(rows, []any{d.EventID, d.Endpoint, d.Type, d.Created, string(d.Body), int32(d.Attempts), d.NextAt, lastErr})
	}
	return im.copy(ctx, "webhook_outbox", []string{"event_id", "endpoint", "type", "created", "body", "attempts", "next_at", "last_error"}, rows)
}

// WebhookOnce loads the ledger of webhook events emitted once, so the
// target does not emit them again.
func (im *Importer) WebhookOnce(ctx context.Context, es []record.OnceEntry) error {
	rows := make([][]any, 0, len(es))
	for _, e := range es {
		if err := storage.CheckWebhookOnce(e.EventID, nil); err != nil {
			return err
		}
		// timestamptz keeps microseconds: round up, so that no ID is
		// forgotten sooner than the source would have.
		keep := e.KeepUntil.Truncate(time.Microsecond)
		if keep.Before(e.KeepUntil) {
			keep = keep.Add(time.Microsecond)
		}
		rows = append(rows, []any{e.EventID, keep})
	}
	return im.copy(ctx, "webhook_once", []string{"event_id", "keep_until"}, rows)
}
