package pgsql

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/sundial-mdm/sundial/storage"
)

var _ storage.RetentionStore = (*Store)(nil)

// PruneCommands implements storage.RetentionStore. The cursor is the
// command sequence. One statement reads the next limit commands by primary
// key and deletes, among them, those no longer queued and last updated
// before before (command_queue rows cascade; a pending command has one).
func (s *Store) PruneCommands(ctx context.Context, before time.Time, after string, limit int) (int, string, error) {
	if limit <= 0 {
		return 0, "", fmt.Errorf("prune commands: limit %d", limit)
	}
	var from int64
	if after != "" {
		n, err := strconv.ParseInt(after, 10, 64)
		if err != nil {
			return 0, "", fmt.Errorf("prune commands: bad cursor %q", after)
		}
		from = n
	}
	var deleted, read int
	var last *int64
	var reachedNew *bool
	err := s.pool.QueryRow(ctx, `
WITH win AS (
    SELECT seq, queued_at, updated_at FROM commands WHERE seq > $1 ORDER BY seq LIMIT $2
), old AS (
    SELECT seq, updated_at FROM win
    WHERE queued_at IS NULL OR queued_at < $3
), del AS (
    DELETE FROM commands c USING old
    WHERE c.seq = old.seq AND old.updated_at < $3
      AND NOT EXISTS (SELECT 1 FROM command_queue q WHERE q.seq = c.seq)
    RETURNING c.seq, c.body_id
), shared AS (
    -- A shared body goes with the last command that refers to it.
    DELETE FROM command_bodies b USING (SELECT DISTINCT body_id FROM del WHERE body_id IS NOT NULL) d
    WHERE b.id = d.body_id
      AND NOT EXISTS (SELECT 1 FROM commands c WHERE c.body_id = b.id AND c.seq NOT IN (SELECT seq FROM del))
)
SELECT (SELECT count(*) FROM del), (SELECT count(*) FROM win), (SELECT max(seq) FROM old),
       (SELECT bool_or(queued_at >= $3) FROM win)`, from, limit, before).Scan(&deleted, &read, &last, &reachedNew)
	if err != nil {
		return 0, "", fmt.Errorf("prune commands: %w", err)
	}
	if read < limit || (reachedNew != nil && *reachedNew) || last == nil {
		return deleted, "", nil
	}
	return deleted, strconv.FormatInt(*last, 10), nil
}

// PruneHistory implements storage.RetentionStore. The cursor is a device ID.
func (s *Store) PruneHistory(ctx context.Context, keep int, after string, limit int) (int, string, error) {
	if keep < 0 || limit <= 0 {
		return 0, "", fmt.Errorf("prune history: keep %d, limit %d", keep, limit)
	}
	var deleted, read int
	var last *string
	err := s.pool.QueryRow(ctx, `
WITH devs AS (
    SELECT device_id FROM ms_states WHERE device_id > $1 ORDER BY device_id LIMIT $2
), ranked AS (
    SELECT h.device_id, h.seq, row_number() OVER (PARTITION BY h.device_id ORDER BY h.seq DESC) AS rn
    FROM ms_history h JOIN devs USING (device_id)
), del AS (
    DELETE FROM ms_history h USING ranked r
    WHERE h.device_id = r.device_id AND h.seq = r.seq AND r.rn > $3
    RETURNING 1
)
SELECT (SELECT count(*) FROM del), (SELECT count(*) FROM devs), (SELECT max(device_id) FROM devs)`, after, limit, keep).Scan(&deleted, &read, &last)
	if err != nil {
		return 0, "", fmt.Errorf("prune history: %w", err)
	}
	if read < limit || last == nil {
		return deleted, "", nil
	}
	return deleted, *last, nil
}
