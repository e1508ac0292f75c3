package pgsql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sundial-mdm/sundial/mdm/ddm"
)

var _ ddm.Store = (*Store)(nil)

// decodeDDM decodes a stored record; NULL (no record yet) is the zero
// record.
func decodeDDM(id string, raw []byte) (*ddm.Record, error) {
	r := new(ddm.Record)
	if raw == nil {
		return r, nil
	}
	if err := json.Unmarshal(raw, r); err != nil {
		return nil, fmt.Errorf("decode declarative record %s: %w", id, err)
	}
	return r, nil
}

// ddmDue is the due_at of r: the deadline of an unconfirmed enforcement
// (also a zero one, which is due at once), NULL otherwise.
func ddmDue(r *ddm.Record) pgtype.Timestamptz {
	if !r.Unconfirmed() {
		return pgtype.Timestamptz{}
	}
	return pgtype.Timestamptz{Time: r.Enforcement.Deadline, Valid: true}
}

// DDMRecord implements ddm.Store. The record and its items are read in
// one snapshot, so an update committed in between is seen whole or not at
// all.
func (s *Store) DDMRecord(ctx context.Context, id string) (*ddm.Record, error) {
	var r *ddm.Record
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var raw []byte
		err := tx.QueryRow(ctx, `SELECT record FROM ddm_records WHERE id = $1`, id).Scan(&raw)
		if errors.Is(err, pgx.ErrNoRows) {
			r = new(ddm.Record)
			return nil
		}
		if err != nil {
			return fmt.Errorf("read declarative record %s: %w", id, err)
		}
		if r, err = decodeDDM(id, raw); err != nil {
			return err
		}
		_, err = loadDDMItems(ctx, tx, id, r)
		return err
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// lockDDMSQL reads an enrollment's record and locks its row until the
// transaction ends.
const lockDDMSQL = `SELECT record, hist_seq FROM ddm_records WHERE id = $1 FOR UPDATE`

// UpdateDDM implements ddm.Store. The enrollment's row is locked (SELECT
// ... FOR UPDATE; created first if missing) for the whole transaction, so
// updates of one enrollment from any number of replicas apply one after
// the other, each fn seeing the previous one's result.
//
// fn may be called more than once: when the database aborts the
// transaction for a serialization failure or a deadlock, the update is
// retried with a freshly read record. fn must therefore have no side
// effects beyond changing the record and returning events.
func (s *Store) UpdateDDM(ctx context.Context, id string, fn func(r *ddm.Record) ([]ddm.Event, error)) error {
	if id == "" || strings.IndexByte(id, 0) >= 0 {
		return fmt.Errorf("update declarative record: invalid enrollment id")
	}
	var fnErr error
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		fnErr = nil
		var (
			raw []byte
			seq int64
		)
		err := tx.QueryRow(ctx, lockDDMSQL, id).Scan(&raw, &seq)
		if errors.Is(err, pgx.ErrNoRows) {
			// First update: create the row (a concurrent first update may
			// win; then this one waits for it) and lock it. If fn fails the
			// rollback removes it again.
			if _, err := tx.Exec(ctx, `INSERT INTO ddm_records (id) VALUES ($1) ON CONFLICT (id) DO NOTHING`, id); err != nil {
				return fmt.Errorf("create: %w", err)
			}
			err = tx.QueryRow(ctx, lockDDMSQL, id).Scan(&raw, &seq)
		}
		if err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		r, err := decodeDDM(id, raw)
		if err != nil {
			return err
		}
		old, err := loadDDMItems(ctx, tx, id, r)
		if err != nil {
			return err
		}
		events, err := fn(r)
		if err != nil {
			fnErr = err
			return err
		}
		v, err := encodeDDMBase(id, r)
		if err != nil {
			return err
		}
		evs := make([]string, len(events))
		for i, ev := range events {
			b, err := json.Marshal(ev)
			if err != nil {
				return fmt.Errorf("encode status event of %s: %w", id, err)
			}
			evs[i] = string(b)
		}
		newSeq := seq + int64(len(evs))
		b := &pgx.Batch{}
		b.Queue(`UPDATE ddm_records SET record = $2, due_at = $3, hist_seq = $4 WHERE id = $1`, id, string(v), ddmDue(r), newSeq)
		if err := queueDDMItems(b, id, r, old); err != nil {
			return err
		}
		if len(evs) > 0 {
			b.Queue(`INSERT INTO ddm_history (id, seq, event)
				SELECT $1, $2 + e.n, e.ev::json FROM unnest($3::text[]) WITH ORDINALITY AS e(ev, n)`, id, seq, evs)
			b.Queue(`DELETE FROM ddm_history WHERE id = $1 AND seq <= $2`, id, newSeq-ddm.HistoryLimit)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		return nil
	})
	switch {
	case fnErr != nil:
		return fnErr // as fn returned it
	case err != nil:
		return fmt.Errorf("update declarative record %s: %w", id, err)
	}
	return nil
}

// DDMHistory implements ddm.Store.
func (s *Store) DDMHistory(ctx context.Context, id string) ([]ddm.Event, error) {
	rows, err := s.pool.Query(ctx, `SELECT event FROM (
		SELECT seq, event FROM ddm_history WHERE id = $1 ORDER BY seq DESC LIMIT $2) h ORDER BY seq`, id, ddm.HistoryLimit)
	if err != nil {
		return nil, fmt.Errorf("read status history of %s: %w", id, err)
	}
	raws, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, fmt.Errorf("read status history of %s: %w", id, err)
	}
	var out []ddm.Event
	for _, raw := range raws {
		var ev ddm.Event
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, fmt.Errorf("decode status event of %s: %w", id, err)
		}
		out = append(out, ev)
	}
	return out, nil
}

// DDMUnconfirmed implements ddm.Store.
func (s *Store) DDMUnconfirmed(ctx context.Context, before time.Time, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM ddm_records WHERE due_at IS NOT NULL AND due_at < $1
		ORDER BY due_at, id LIMIT $2`, before, limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("list unconfirmed enforcements: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list unconfirmed enforcements: %w", err)
	}
	return ids, nil
}
