package pgsql

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sundial-mdm/sundial/storage"
)

var _ storage.ComplianceDayStore = (*Store)(nil)

// PutComplianceDay implements storage.ComplianceDayStore.
func (s *Store) PutComplianceDay(ctx context.Context, day string, rows []storage.ComplianceDay) error {
	keepFrom, err := storage.CheckComplianceDay(day, rows)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM compliance_days WHERE day < $1::date OR day = $2::date`, keepFrom, day); err != nil {
			return err
		}
		for _, r := range rows {
			if _, err := tx.Exec(ctx, `INSERT INTO compliance_days (day, group_id, devices, managed, compliant) VALUES ($1::date, $2, $3, $4, $5)`,
				day, r.GroupID, r.Devices, r.Managed, r.Compliant); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store compliance day: %w", err)
	}
	return nil
}

// ComplianceDays implements storage.ComplianceDayStore.
func (s *Store) ComplianceDays(ctx context.Context, since string) ([]storage.ComplianceDay, error) {
	if _, err := time.Parse(time.DateOnly, since); err != nil {
		return nil, fmt.Errorf("compliance days since %q: want YYYY-MM-DD", since)
	}
	rows, err := s.pool.Query(ctx, `SELECT day, group_id, devices, managed, compliant FROM compliance_days
		WHERE day >= $1::date ORDER BY day, group_id`, since)
	if err != nil {
		return nil, fmt.Errorf("load compliance days: %w", err)
	}
	defer rows.Close()
	var out []storage.ComplianceDay
	for rows.Next() {
		var r storage.ComplianceDay
		var d time.Time
		if err := rows.Scan(&d, &r.GroupID, &r.Devices, &r.Managed, &r.Compliant); err != nil {
			return nil, err
		}
		r.Day = d.Format(time.DateOnly)
		out = append(out, r)
	}
	return out, rows.Err()
}
