package pgsql

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/sundial-mdm/sundial/storage"
)

var _ storage.EvidenceStore = (*Store)(nil)

// PutEvidenceDay implements storage.EvidenceStore.
func (s *Store) PutEvidenceDay(ctx context.Context, d storage.EvidenceDay) error {
	keepFrom, err := storage.CheckEvidenceDay(&d)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode evidence of %s: %w", d.Day, err)
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM evidence_days WHERE day < $1::date`, keepFrom); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO evidence_days (day, record) VALUES ($1::date, $2)
			ON CONFLICT (day) DO UPDATE SET record = EXCLUDED.record`, d.Day, string(raw))
		return err
	})
	if err != nil {
		return fmt.Errorf("store evidence of %s: %w", d.Day, err)
	}
	return nil
}

// EvidenceDays implements storage.EvidenceStore.
func (s *Store) EvidenceDays(ctx context.Context, from, to string) ([]storage.EvidenceDay, error) {
	if err := storage.CheckEvidenceRange(from, to); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT record FROM evidence_days WHERE day BETWEEN $1::date AND $2::date ORDER BY day`, from, to)
	if err != nil {
		return nil, fmt.Errorf("load evidence: %w", err)
	}
	defer rows.Close()
	var out []storage.EvidenceDay
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, fmt.Errorf("load evidence: %w", err)
		}
		var d storage.EvidenceDay
		if err := json.Unmarshal(raw, &d); err != nil {
			return nil, fmt.Errorf("decode evidence: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}
