package pgsql

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sundial-mdm/sundial/internal/webhook"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

var _ storage.WebhookOutbox = (*Store)(nil)

// EnqueueWebhooks implements storage.WebhookOutbox.
func (s *Store) EnqueueWebhooks(ctx context.Context, ds []storage.WebhookDelivery) error {
	for i := range ds {
		if err := storage.CheckWebhookDelivery(&ds[i]); err != nil {
			return err
		}
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return enqueueWebhooksTx(ctx, tx, ds)
	})
	if err != nil {
		return fmt.Errorf("enqueue webhooks: %w", err)
	}
	return nil
}

// enqueueWebhooksTx inserts checked deliveries inside the caller's
// transaction (one statement), so an event commits with the change that
// caused it.
func enqueueWebhooksTx(ctx context.Context, tx pgx.Tx, ds []storage.WebhookDelivery) error {
	if len(ds) == 0 {
		return nil
	}
	var (
		evs, eps, types, bodies, errs []string
		created, next                 []time.Time
		attempts                      []int32
	)
	for _, d := range ds {
		evs, eps, types, bodies, errs = append(evs, d.EventID), append(eps, d.Endpoint), append(types, d.Type), append(bodies, string(d.Body)), append(errs, d.LastErr)
		created, next, attempts = append(created, d.Created), append(next, d.NextAt), append(attempts, int32(d.Attempts))
	}
	_, err := tx.Exec(ctx, `INSERT INTO webhook_outbox (event_id, endpoint, type, created, body, attempts, next_at, last_error)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::int[], $7::timestamptz[], $8::text[])
		ON CONFLICT (event_id, endpoint) DO NOTHING`, evs, eps, types, created, bodies, attempts, next, errs)
	return err
}

// enqueueCommitWebhooks writes the events of scheduler commits to the outbox
// inside the transaction that commits them, so an event exists if and only
// if its phase change does. Commits without a phase change cost nothing.
func enqueueCommitWebhooks(ctx context.Context, tx pgx.Tx, commits []scheduler.Commit, now time.Time) error {
	if !webhook.HasEvents(commits) {
		return nil
	}
	var events []webhook.Event
	for i := range commits {
		events = append(events, webhook.CommitEvents(&commits[i], now)...)
	}
	return enqueueEventsTx(ctx, tx, events)
}

// enqueueEventsTx fans events out to the subscribed endpoints inside tx.
func enqueueEventsTx(ctx context.Context, tx pgx.Tx, events []webhook.Event) error {
	if len(events) == 0 {
		return nil
	}
	eps, err := webhookEndpoints(ctx, tx)
	if err != nil {
		return err
	}
	ds, err := webhook.Deliveries(events, eps)
	if err != nil {
		return err
	}
	for i := range ds {
		if err := storage.CheckWebhookDelivery(&ds[i]); err != nil {
			return err
		}
	}
	if err := enqueueWebhooksTx(ctx, tx, ds); err != nil {
		return fmt.Errorf("enqueue webhooks: %w", err)
	}
	return nil
}

// DueWebhooks implements storage.WebhookOutbox.
func (s *Store) DueWebhooks(ctx context.Context, now time.Time, limit int) ([]storage.WebhookDelivery, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := s.pool.Query(ctx, `SELECT event_id, endpoint, type, created, body, attempts, next_at, last_error
		FROM webhook_outbox WHERE next_at <= $1 ORDER BY next_at, event_id, endpoint LIMIT $2`, now, limit)
	if err != nil {
		return nil, fmt.Errorf("load due webhooks: %w", err)
	}
	defer rows.Close()
	var out []storage.WebhookDelivery
	for rows.Next() {
		var d storage.WebhookDelivery
		var body string
		if err := rows.Scan(&d.EventID, &d.Endpoint, &d.Type, &d.Created, &body, &d.Attempts, &d.NextAt, &d.LastErr); err != nil {
			return nil, err
		}
		d.Body = []byte(body)
		d.Created, d.NextAt = d.Created.UTC(), d.NextAt.UTC()
		out = append(out, d)
	}
	return out, rows.Err()
}

// AckWebhook implements storage.WebhookOutbox.
func (s *Store) AckWebhook(ctx context.Context, eventID, endpoint string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM webhook_outbox WHERE event_id = $1 AND endpoint = $2`, eventID, endpoint); err != nil {
		return fmt.Errorf("ack webhook: %w", err)
	}
	return nil
}

// RetryWebhook implements storage.WebhookOutbox.
func (s *Store) RetryWebhook(ctx context.Context, eventID, endpoint string, attempts int, next time.Time, lastErr string) error {
	if len(lastErr) > storage.MaxWebhookError {
		lastErr = lastErr[:storage.MaxWebhookError]
	}
	tag, err := s.pool.Exec(ctx, `UPDATE webhook_outbox SET attempts = $3, next_at = $4, last_error = $5
		WHERE event_id = $1 AND endpoint = $2`, eventID, endpoint, attempts, next, lastErr)
	if err != nil {
		return fmt.Errorf("retry webhook: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return storage.ErrNotFound
	}
	return nil
}

// PruneWebhooks implements storage.WebhookOutbox.
func (s *Store) PruneWebhooks(ctx context.Context, olderThan time.Time, maxPerEndpoint int) (int, error) {
	n := 0
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM webhook_outbox WHERE created < $1`, olderThan)
		if err != nil {
			return err
		}
		n = int(tag.RowsAffected())
		if maxPerEndpoint <= 0 {
			return nil
		}
		tag, err = tx.Exec(ctx, `DELETE FROM webhook_outbox o USING (
			SELECT event_id, endpoint, row_number() OVER (PARTITION BY endpoint ORDER BY created DESC, event_id DESC) AS rn
			FROM webhook_outbox) r
			WHERE o.event_id = r.event_id AND o.endpoint = r.endpoint AND r.rn > $1`, maxPerEndpoint)
		if err != nil {
			return err
		}
		n += int(tag.RowsAffected())
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune webhooks: %w", err)
	}
	return n, nil
}

var _ storage.WebhookEndpointStore = (*Store)(nil)

// PutWebhookEndpoint implements storage.WebhookEndpointStore.
func (s *Store) PutWebhookEndpoint(ctx context.Context, e storage.WebhookEndpoint) error {
	if err := storage.CheckWebhookEndpoint(&e); err != nil {
		return err
	}
	events := e.Events
	if events == nil {
		events = []string{}
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Serialise creates so the count check holds.
		if _, err := tx.Exec(ctx, `LOCK TABLE webhook_endpoints IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return err
		}
		var exists bool
		var n int
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = $1), (SELECT count(*) FROM webhook_endpoints)`, e.ID).Scan(&exists, &n); err != nil {
			return err
		}
		if !exists && n >= storage.MaxWebhookEndpoints {
			return storage.ErrWebhookLimit
		}
		_, err := tx.Exec(ctx, `INSERT INTO webhook_endpoints (id, url, events, secret, created) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (id) DO UPDATE SET url = EXCLUDED.url, events = EXCLUDED.events, secret = EXCLUDED.secret, created = EXCLUDED.created`,
			e.ID, e.URL, events, e.Secret, e.Created)
		return err
	})
	if err != nil {
		return fmt.Errorf("store webhook endpoint: %w", err)
	}
	return nil
}

// webhookEndpoints lists the endpoints through q (the pool or a transaction).
func webhookEndpoints(ctx context.Context, q interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}) ([]storage.WebhookEndpoint, error) {
	rows, err := q.Query(ctx, `SELECT id, url, events, secret, created FROM webhook_endpoints ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("load webhook endpoints: %w", err)
	}
	defer rows.Close()
	var out []storage.WebhookEndpoint
	for rows.Next() {
		var e storage.WebhookEndpoint
		if err := rows.Scan(&e.ID, &e.URL, &e.Events, &e.Secret, &e.Created); err != nil {
			return nil, err
		}
		if len(e.Events) == 0 {
			e.Events = nil
		}
		e.Created = e.Created.UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// WebhookEndpoints implements storage.WebhookEndpointStore.
func (s *Store) WebhookEndpoints(ctx context.Context) ([]storage.WebhookEndpoint, error) {
	return webhookEndpoints(ctx, s.pool)
}

// DeleteWebhookEndpoint implements storage.WebhookEndpointStore.
func (s *Store) DeleteWebhookEndpoint(ctx context.Context, id string) error {
	found := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM webhook_endpoints WHERE id = $1`, id)
		if err != nil {
			return err
		}
		found = tag.RowsAffected() > 0
		_, err = tx.Exec(ctx, `DELETE FROM webhook_outbox WHERE endpoint = $1`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete webhook endpoint: %w", err)
	}
	if !found {
		return storage.ErrNotFound
	}
	return nil
}
