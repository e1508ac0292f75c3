package pgsql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/storage"
)

// historyJSON is events as a JSON array, to append to commands.history.
func historyJSON(events ...mdm.StatusEvent) (string, error) {
	b, err := json.Marshal(events)
	if err != nil {
		return "", fmt.Errorf("encode command history: %w", err)
	}
	return string(b), nil
}

// enqueueSQL inserts one command record per enrollment ($1, in order) and
// queues it. With $7 the body is stored once, in command_bodies, and the
// records refer to it instead of holding it.
const enqueueSQL = `
WITH body AS (INSERT INTO command_bodies (raw) SELECT $4 WHERE $7 RETURNING id),
ins AS (
	INSERT INTO commands (enrollment_id, uuid, request_type, raw, body_id, status, queued_at, updated_at, history)
	SELECT u.id, $2, $3, CASE WHEN $7 THEN NULL ELSE $4::bytea END, (SELECT id FROM body), 'Queued', $5, $5, $6::jsonb
	FROM unnest($1::text[]) WITH ORDINALITY AS u(id, n) ORDER BY u.n
	RETURNING enrollment_id, seq)
INSERT INTO command_queue (enrollment_id, seq) SELECT enrollment_id, seq FROM ins`

// shareMin is the smallest body stored once for several enrollments.
const shareMin = 64

// rawSQL is a commands row's body, its own or the one it shares.
const rawSQL = `COALESCE(c.raw, (SELECT b.raw FROM command_bodies b WHERE b.id = c.body_id))`

// enqueue queues cmd for ids in one statement. An unknown enrollment or a
// UUID already used gives ErrNotFound or ErrExists (the statement, and so
// nothing of it, is applied).
func enqueue(ctx context.Context, q querier, ids []string, cmd *mdm.Command, now time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	hist, err := historyJSON(mdm.StatusEvent{Status: mdm.StatusQueued, At: now})
	if err != nil {
		return err
	}
	raw := cmd.Raw
	if raw == nil {
		raw = []byte{}
	}
	shared := len(ids) > 1 && len(raw) >= shareMin
	_, err = q.Exec(ctx, enqueueSQL, ids, cmd.UUID, cmd.RequestType, raw, ts(now), hist, shared)
	switch {
	case foreignKeyViolation(err):
		return fmt.Errorf("command %s: enrollment %w", cmd.UUID, storage.ErrNotFound)
	case uniqueViolation(err, ""):
		return fmt.Errorf("command %s: %w", cmd.UUID, storage.ErrExists)
	case err != nil:
		return fmt.Errorf("enqueue %s: %w", cmd.UUID, err)
	}
	return nil
}

// Enqueue implements storage.CommandQueue. The common case is one
// statement; a refused one is explained by a second look that names the
// enrollment at fault.
func (s *Store) Enqueue(ctx context.Context, ids []string, cmd *mdm.Command, now time.Time) error {
	err := enqueue(ctx, s.pool, ids, cmd, now)
	if errors.Is(err, storage.ErrNotFound) {
		if e := missingDevice(ctx, s.pool, ids); e != nil && errors.Is(e, storage.ErrNotFound) {
			return fmt.Errorf("command %s: %w", cmd.UUID, e)
		}
	}
	if errors.Is(err, storage.ErrExists) {
		var dup string
		if s.pool.QueryRow(ctx, `SELECT enrollment_id FROM commands WHERE enrollment_id = ANY($1) AND uuid = $2 LIMIT 1`, ids, cmd.UUID).Scan(&dup) == nil {
			return fmt.Errorf("command %s for %s: %w", cmd.UUID, dup, storage.ErrExists)
		}
	}
	return err
}

// finishSQL records a final report ($3) of command $2 of enrollment $1 and
// takes it out of the queue. Deleting the queue row locks it: of two
// concurrent reports of one command, the second finds no row and records
// nothing.
const finishSQL = `
WITH done AS (
	DELETE FROM command_queue q USING commands c
	WHERE c.enrollment_id = $1 AND c.uuid = $2 AND q.enrollment_id = $1 AND q.seq = c.seq
	RETURNING q.seq)
UPDATE commands c SET status = $3, updated_at = $4, history = c.history || $5::jsonb,
	error_chain = $6::jsonb, result = $7
FROM done WHERE c.seq = done.seq
RETURNING c.request_type`

// notNowSQL records a NotNow of command $2 of enrollment $1 and marks its
// queue row so that it is not offered again in this session. Repeated
// NotNows collapse into one history entry with the latest time
// (mdm.AppendStatus); not_now_count counts them.
const notNowSQL = `
WITH marked AS (
	UPDATE command_queue q SET not_now = true FROM commands c
	WHERE c.enrollment_id = $1 AND c.uuid = $2 AND q.enrollment_id = $1 AND q.seq = c.seq
	RETURNING q.seq)
UPDATE commands c SET status = $3, updated_at = $4,
	history = CASE WHEN c.history->-1->>'status' = 'NotNow'
		THEN jsonb_set(c.history, '{-1}', $5::jsonb->0) ELSE c.history || $5::jsonb END,
	not_now_count = c.not_now_count + 1
FROM marked WHERE c.seq = marked.seq
RETURNING c.request_type`

// nextSQL picks the first queued command of $1 that no other connect holds
// and locks it until the transaction ends. nextFreshSQL also passes over
// commands answered NotNow in this session.
const (
	nextSQL = `
SELECT c.uuid, c.request_type, ` + rawSQL + ` FROM command_queue q JOIN commands c ON c.seq = q.seq
WHERE q.enrollment_id = $1
ORDER BY q.seq LIMIT 1
FOR UPDATE OF q SKIP LOCKED`
	nextFreshSQL = `
SELECT c.uuid, c.request_type, ` + rawSQL + ` FROM command_queue q JOIN commands c ON c.seq = q.seq
WHERE q.enrollment_id = $1 AND NOT q.not_now
ORDER BY q.seq LIMIT 1
FOR UPDATE OF q SKIP LOCKED`
)

// clearNotNowSQL starts a new session: every queued command may be offered
// again. It writes nothing when there are no marks.
const clearNotNowSQL = `UPDATE command_queue SET not_now = false WHERE enrollment_id = $1 AND not_now`

// StoreReportAndNext implements storage.CommandQueue.
//
// Each call is one round trip: its statements go in one pipelined batch,
// which PostgreSQL runs as one implicit transaction. An Idle commits
// asynchronously (synchronous_commit off): all it may write is NotNow marks
// being cleared and row locks, and losing those in a crash is harmless.
func (s *Store) StoreReportAndNext(ctx context.Context, id string, r *mdm.Report, raw []byte, now time.Time) (string, *mdm.Command, error) {
	var (
		b    pgx.Batch
		next = nextSQL
	)
	idle := r.Status == mdm.Idle
	if idle {
		b.Queue(`SELECT set_config('synchronous_commit', 'off', true)`)
		b.Queue(clearNotNowSQL, id)
	} else {
		hist, err := historyJSON(mdm.StatusEvent{Status: string(r.Status), At: now})
		if err != nil {
			return "", nil, err
		}
		if r.Status == mdm.NotNow {
			b.Queue(notNowSQL, id, r.CommandUUID, string(r.Status), ts(now), hist)
		} else {
			args, err := finishArgs(id, r, raw, hist, now)
			if err != nil {
				return "", nil, err
			}
			b.Queue(finishSQL, args...)
		}
		next = nextFreshSQL
	}
	b.Queue(next, id)

	var (
		reported string
		cmd      *mdm.Command
	)
	err := retry(ctx, func() error {
		reported, cmd = "", nil
		return readBatch(ctx, s.pool, &b, func(br pgx.BatchResults) error {
			if idle {
				if _, err := br.Exec(); err != nil {
					return err
				}
				if _, err := br.Exec(); err != nil {
					return fmt.Errorf("clear not-now marks: %w", err)
				}
			} else {
				err := br.QueryRow().Scan(&reported)
				if err != nil && !errors.Is(err, pgx.ErrNoRows) {
					return fmt.Errorf("record %s report of %s: %w", r.Status, r.CommandUUID, err)
				}
			}
			var err error
			cmd, err = scanNext(br)
			return err
		})
	})
	if err != nil {
		return "", nil, fmt.Errorf("store report of %s: %w", id, err)
	}
	return reported, cmd, nil
}

// finishArgs are finishSQL's arguments for report r with body raw.
func finishArgs(id string, r *mdm.Report, raw []byte, hist string, now time.Time) ([]any, error) {
	var chain any // NULL when empty
	if len(r.ErrorChain) > 0 {
		cb, err := json.Marshal(r.ErrorChain)
		if err != nil {
			return nil, fmt.Errorf("encode error chain: %w", err)
		}
		chain = string(cb)
	}
	result := raw
	if result == nil {
		result = []byte{}
	}
	return []any{id, r.CommandUUID, string(r.Status), ts(now), hist, chain, result}, nil
}

// StoreBoundReportAndNext implements storage.CommandQueue: the binding is
// checked first, then the report is recorded as StoreReportInventoryAndNext
// records it.
func (s *Store) StoreBoundReportAndNext(ctx context.Context, id, certHash string, r *mdm.Report, raw []byte, inv *mdm.Inventory, now time.Time) (string, bool, *mdm.Command, error) {
	bound, err := s.CertBound(ctx, id, certHash)
	if err != nil {
		return "", false, nil, err
	}
	if !bound {
		return "", false, nil, fmt.Errorf("%s: %w", id, storage.ErrNotBound)
	}
	return s.StoreReportInventoryAndNext(ctx, id, r, raw, inv, now)
}

// lockInventorySQL reads a device's inventory to merge into and locks the
// row until the transaction ends (not its key: enqueues for the device
// may go on).
const lockInventorySQL = `SELECT inventory FROM devices WHERE id = $1 FOR NO KEY UPDATE`

// StoreReportInventoryAndNext implements storage.CommandQueue. With an
// inventory to store it is one transaction of two pipelined batches: the
// report with the device row's inventory, then the merged inventory with
// the next command.
func (s *Store) StoreReportInventoryAndNext(ctx context.Context, id string, r *mdm.Report, raw []byte, inv *mdm.Inventory, now time.Time) (string, bool, *mdm.Command, error) {
	if inv == nil || r.Status != mdm.Acknowledged {
		rt, cmd, err := s.StoreReportAndNext(ctx, id, r, raw, now)
		return rt, false, cmd, err
	}
	hist, err := historyJSON(mdm.StatusEvent{Status: string(r.Status), At: now})
	if err != nil {
		return "", false, nil, err
	}
	args, err := finishArgs(id, r, raw, hist, now)
	if err != nil {
		return "", false, nil, err
	}
	var (
		reported string
		stored   bool
		cmd      *mdm.Command
	)
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		reported, stored, cmd = "", false, nil
		var (
			b     pgx.Batch
			old   []byte
			found bool
		)
		b.Queue(finishSQL, args...)
		b.Queue(lockInventorySQL, id)
		err := readBatch(ctx, tx, &b, func(br pgx.BatchResults) error {
			if err := br.QueryRow().Scan(&reported); err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("record %s report of %s: %w", r.Status, r.CommandUUID, err)
			}
			switch err := br.QueryRow().Scan(&old); {
			case errors.Is(err, pgx.ErrNoRows):
			case err != nil:
				return fmt.Errorf("read inventory: %w", err)
			default:
				found = true
			}
			return nil
		})
		if err != nil {
			return err
		}

		b = pgx.Batch{}
		update := false
		if found && reported == "DeviceInformation" {
			// A stored inventory that does not decode keeps the report
			// alone, as a separate inventory write did: the service then
			// tries the inventory on its own and logs why.
			if merged, js, err := mergeInventory(id, old, inv); err == nil {
				update = true
				b.Queue(updateInventorySQL, id, js, ts(now), merged.OSVersion, merged.BuildVersion, merged.SerialNumber)
			}
		}
		b.Queue(nextFreshSQL, id)
		return readBatch(ctx, tx, &b, func(br pgx.BatchResults) error {
			if update {
				if _, err := br.Exec(); err != nil {
					return fmt.Errorf("update inventory: %w", err)
				}
				stored = true
			}
			var err error
			cmd, err = scanNext(br)
			return err
		})
	})
	if err != nil {
		return "", false, nil, fmt.Errorf("store report of %s: %w", id, err)
	}
	return reported, stored, cmd, nil
}

// commandColumns are scanCommand's columns of commands c.
const commandColumns = `c.enrollment_id, c.uuid, c.request_type, ` + rawSQL + `, c.seq, c.status, c.queued_at, c.updated_at,
	c.not_now_count, c.error_chain, c.result, c.history`

func scanCommand(row pgx.Row) (*mdm.CommandRecord, error) {
	rec := new(mdm.CommandRecord)
	var (
		seq         int64
		chain, hist []byte
	)
	err := row.Scan(&rec.EnrollmentID, &rec.UUID, &rec.RequestType, &rec.Raw, &seq, &rec.Status,
		scanTime(&rec.QueuedAt), scanTime(&rec.UpdatedAt), &rec.NotNowCount, &chain, &rec.Result, &hist)
	if err != nil {
		return nil, err
	}
	rec.Seq = uint64(seq)
	if chain != nil {
		if err := json.Unmarshal(chain, &rec.ErrorChain); err != nil {
			return nil, fmt.Errorf("decode error chain of %s: %w", rec.UUID, err)
		}
	}
	if err := json.Unmarshal(hist, &rec.History); err != nil {
		return nil, fmt.Errorf("decode history of %s: %w", rec.UUID, err)
	}
	return rec, nil
}

// Command implements storage.CommandQueue.
func (s *Store) Command(ctx context.Context, id, uuid string) (*mdm.CommandRecord, error) {
	rec, err := scanCommand(s.pool.QueryRow(ctx, `SELECT `+commandColumns+` FROM commands c WHERE c.enrollment_id = $1 AND c.uuid = $2`, id, uuid))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("command %s for %s: %w", uuid, id, storage.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read command %s for %s: %w", uuid, id, err)
	}
	return rec, nil
}

// Commands implements storage.CommandQueue.
func (s *Store) Commands(ctx context.Context, id string) ([]*mdm.CommandRecord, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+commandColumns+` FROM commands c WHERE c.enrollment_id = $1 ORDER BY c.seq`, id)
	if err != nil {
		return nil, fmt.Errorf("list commands of %s: %w", id, err)
	}
	defer rows.Close()
	var out []*mdm.CommandRecord
	for rows.Next() {
		rec, err := scanCommand(rows)
		if err != nil {
			return nil, fmt.Errorf("list commands of %s: %w", id, err)
		}
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list commands of %s: %w", id, err)
	}
	return out, nil
}

// HasPending implements storage.CommandQueue.
func (s *Store) HasPending(ctx context.Context, id string) (bool, error) {
	var ok bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM command_queue WHERE enrollment_id = $1)`, id).Scan(&ok); err != nil {
		return false, fmt.Errorf("check queue of %s: %w", id, err)
	}
	return ok, nil
}

// batchSender is a pool or a transaction.
type batchSender interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// readBatch sends b, lets read take its results, and closes them,
// returning the first error.
func readBatch(ctx context.Context, q batchSender, b *pgx.Batch, read func(pgx.BatchResults) error) error {
	br := q.SendBatch(ctx, b)
	err := read(br)
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return err
}

// scanNext reads the next command (nextFreshSQL) from a batch: nil when
// the queue is empty.
func scanNext(br pgx.BatchResults) (*mdm.Command, error) {
	c := new(mdm.Command)
	switch err := br.QueryRow().Scan(&c.UUID, &c.RequestType, &c.Raw); {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("next command: %w", err)
	}
	return c, nil
}
