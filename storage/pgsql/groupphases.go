package pgsql

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

var _ scheduler.GroupPhaseStore = (*Store)(nil)

// GroupPhases implements scheduler.GroupPhaseStore: the database extracts
// the two fields from each state's JSON, so only they cross the wire.
func (s *Store) GroupPhases(ctx context.Context, after string, limit int) ([]scheduler.GroupPhase, error) {
	if limit <= 0 {
		limit = 1 << 30
	}
	rows, err := s.pool.Query(ctx, `SELECT device_id, coalesce(state->>'group_id', ''), coalesce(state->>'phase', '')
		FROM ms_states WHERE device_id > $1 ORDER BY device_id LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list groups and phases: %w", err)
	}
	var out []scheduler.GroupPhase
	err = forEachRow(rows, func(row pgx.CollectableRow) error {
		var gp scheduler.GroupPhase
		var phase string
		if err := row.Scan(&gp.DeviceID, &gp.GroupID, &phase); err != nil {
			return err
		}
		gp.Phase = softwareupdate.Phase(phase)
		out = append(out, gp)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list groups and phases: %w", err)
	}
	return out, nil
}
