package pgsql

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sundial-mdm/sundial/mdm/push"
)

// pushableSQL is the condition PushTargets and DueRepushes share: an
// enabled enrollment with a valid push token and magic.
const pushableSQL = `d.enabled AND length(d.push_token) > 0 AND NOT d.token_invalid AND d.push_magic <> ''`

// PushTargets implements push.Store.
func (s *Store) PushTargets(ctx context.Context, ids []string) ([]push.TargetState, error) {
	out := make([]push.TargetState, 0, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT d.id, d.topic, d.push_token, d.push_magic, d.push_attempt FROM devices d
		WHERE d.id = ANY($1) AND `+pushableSQL, dedupe(ids))
	if err != nil {
		return nil, fmt.Errorf("read push targets: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var t push.TargetState
		if err := rows.Scan(&t.EnrollmentID, &t.Topic, &t.Token, &t.PushMagic, &t.Attempt); err != nil {
			return nil, fmt.Errorf("read push targets: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read push targets: %w", err)
	}
	return out, nil
}

// recordPushesSQL stores one push record per enrollment; unknown
// enrollments match no row and are ignored.
const recordPushesSQL = `
UPDATE devices d SET push_at = v.at, push_outcome = v.outcome, push_reason = v.reason,
	push_attempt = v.attempt, next_repush = v.next, token_invalid = d.token_invalid OR v.invalid
FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::int[], $6::timestamptz[], $7::bool[])
	AS v(id, at, outcome, reason, attempt, next, invalid)
WHERE d.id = v.id`

// RecordPushes implements push.Store. All records are written in one
// statement; of several records for one enrollment the last one counts,
// and the token is flagged invalid if any of them says so.
func (s *Store) RecordPushes(ctx context.Context, recs []push.Record) error {
	if len(recs) == 0 {
		return nil
	}
	idx := make(map[string]int, len(recs))
	var (
		ids              []string
		at, next         []pgtype.Timestamptz
		outcomes, reason []string
		attempts         []int32
		invalid          []bool
	)
	for _, r := range recs {
		i, ok := idx[r.EnrollmentID]
		if !ok {
			i = len(ids)
			idx[r.EnrollmentID] = i
			ids = append(ids, r.EnrollmentID)
			at, next = append(at, pgtype.Timestamptz{}), append(next, pgtype.Timestamptz{})
			outcomes, reason = append(outcomes, ""), append(reason, "")
			attempts, invalid = append(attempts, 0), append(invalid, false)
		}
		at[i], next[i] = ts(r.At), ts(r.NextRepush)
		outcomes[i], reason[i] = string(r.Outcome), r.Reason
		attempts[i] = int32(r.Attempt)
		invalid[i] = invalid[i] || r.Outcome.InvalidatesToken()
	}
	err := retry(ctx, func() error {
		_, err := s.pool.Exec(ctx, recordPushesSQL, ids, at, outcomes, reason, attempts, next, invalid)
		return err
	})
	if err != nil {
		return fmt.Errorf("record pushes: %w", err)
	}
	return nil
}

// DueRepushes implements push.Store: enrollments due a re-push that have
// not connected since their last push and still have queued commands,
// earliest first.
func (s *Store) DueRepushes(ctx context.Context, now time.Time, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT d.id FROM devices d
		WHERE d.next_repush IS NOT NULL AND d.next_repush <= $1
			AND d.push_at IS NOT NULL AND (d.last_seen IS NULL OR d.last_seen < d.push_at)
			AND `+pushableSQL+`
			AND EXISTS (SELECT 1 FROM command_queue q WHERE q.enrollment_id = d.id)
		ORDER BY d.next_repush, d.id LIMIT $2`, ts(now), limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("list due re-pushes: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list due re-pushes: %w", err)
	}
	return ids, nil
}
