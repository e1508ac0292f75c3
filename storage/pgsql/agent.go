package pgsql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sundial-mdm/sundial/storage"
)

var _ storage.AgentStore = (*Store)(nil)

// putAgentSecretSQL sets agent $1's secret hash $2 (set at $3), keeping
// its zone and history.
const putAgentSecretSQL = `INSERT INTO agents (id, secret_hash, secret_set_at) VALUES ($1, $2, $3)
	ON CONFLICT (id) DO UPDATE SET secret_hash = EXCLUDED.secret_hash, secret_set_at = EXCLUDED.secret_set_at`

// PutAgentSecret implements storage.AgentStore. Rotation keeps the zone
// and the history.
func (s *Store) PutAgentSecret(ctx context.Context, id, hash string, now time.Time) error {
	err := retry(ctx, func() error {
		_, err := s.pool.Exec(ctx, putAgentSecretSQL, id, hash, ts(now))
		return err
	})
	switch {
	case foreignKeyViolation(err):
		return fmt.Errorf("device %s: %w", id, storage.ErrNotFound)
	case err != nil:
		return fmt.Errorf("put agent secret of %s: %w", id, err)
	}
	return nil
}

// AgentSecretHash implements storage.AgentStore.
func (s *Store) AgentSecretHash(ctx context.Context, id string) (string, error) {
	var h string
	err := s.pool.QueryRow(ctx, `SELECT secret_hash FROM agents WHERE id = $1 AND secret_hash <> ''`, id).Scan(&h)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", fmt.Errorf("agent of %s: %w", id, storage.ErrNotFound)
	case err != nil:
		return "", fmt.Errorf("read agent secret of %s: %w", id, err)
	}
	return h, nil
}

// appendAgentReportSQL updates the agent row (locking it, so that reports
// of one device are appended one after the other), numbers the new events
// after the ones appended before and drops those beyond the newest
// $6 (MaxAgentEvents). The DELETE sees the rows as they were before the
// statement, so $5 must hold at most MaxAgentEvents events.
const appendAgentReportSQL = `
WITH a AS (
	UPDATE agents SET time_zone = CASE WHEN $2 <> '' THEN $2 ELSE time_zone END,
		last_report_at = $3, event_seq = event_seq + $4
	WHERE id = $1
	RETURNING event_seq
), ins AS (
	INSERT INTO agent_events (id, seq, event)
	SELECT $1, a.event_seq - $4 + e.n, e.ev::jsonb
	FROM a, unnest($5::text[]) WITH ORDINALITY AS e(ev, n)
), del AS (
	DELETE FROM agent_events WHERE id = $1 AND seq <= (SELECT event_seq FROM a) - $6
)
SELECT count(*) FROM a`

// AppendAgentReport implements storage.AgentStore in one statement.
func (s *Store) AppendAgentReport(ctx context.Context, id string, rep storage.AgentReport, now time.Time) error {
	evs := rep.Events
	if over := len(evs) - storage.MaxAgentEvents; over > 0 {
		evs = evs[over:]
	}
	raw := make([]string, len(evs))
	for i, ev := range evs {
		b, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("encode agent event of %s: %w", id, err)
		}
		raw[i] = string(b)
	}
	var n int
	err := retry(ctx, func() error {
		return s.pool.QueryRow(ctx, appendAgentReportSQL, id, rep.TimeZone, ts(now), int64(len(raw)), raw, int64(storage.MaxAgentEvents)).Scan(&n)
	})
	switch {
	case err != nil:
		return fmt.Errorf("append agent report of %s: %w", id, err)
	case n == 0:
		return fmt.Errorf("agent of %s: %w", id, storage.ErrNotFound)
	}
	return nil
}

// AgentState implements storage.AgentStore: the row and its newest events,
// read in one statement.
func (s *Store) AgentState(ctx context.Context, id string) (*storage.AgentState, error) {
	var (
		st     storage.AgentState
		events []byte
	)
	err := s.pool.QueryRow(ctx, `SELECT a.secret_set_at, a.time_zone, a.last_report_at,
			coalesce((SELECT json_agg(e.event ORDER BY e.seq) FROM (
				SELECT seq, event FROM agent_events WHERE id = a.id ORDER BY seq DESC LIMIT $2) e), '[]')
		FROM agents a WHERE a.id = $1`, id, storage.MaxAgentEvents).
		Scan(scanTime(&st.SecretSetAt), &st.TimeZone, scanTime(&st.LastReportAt), &events)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, fmt.Errorf("agent of %s: %w", id, storage.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("read agent of %s: %w", id, err)
	}
	if err := json.Unmarshal(events, &st.Events); err != nil {
		return nil, fmt.Errorf("decode agent events of %s: %w", id, err)
	}
	if len(st.Events) == 0 {
		st.Events = nil
	}
	return &st, nil
}
