package pgsql

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// GroupMembers lists the devices of group in ID order after `after`, up to
// limit (storage.ErrNotFound for an unknown group): device enrollments, not
// user channels, with a membership of the group, or without one for the
// default group.
func (s *Store) GroupMembers(ctx context.Context, group, after string, limit int) ([]string, error) {
	var rows pgx.Rows
	var err error
	if group == scheduler.DefaultGroupID {
		rows, err = s.pool.Query(ctx, `SELECT d.id FROM devices d
			WHERE d.id > $1 AND d.parent_id = ''
				AND NOT EXISTS (SELECT 1 FROM ms_members m WHERE m.device_id = d.id)
			ORDER BY d.id LIMIT $2`, after, limitArg(limit))
	} else {
		var one int
		err = s.pool.QueryRow(ctx, `SELECT 1 FROM ms_groups WHERE id = $1`, group).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("group %s: %w", group, storage.ErrNotFound)
		}
		if err == nil {
			rows, err = s.pool.Query(ctx, `SELECT d.id FROM ms_members m JOIN devices d ON d.id = m.device_id
				WHERE m.group_id = $1 AND d.id > $2 AND d.parent_id = ''
				ORDER BY d.id LIMIT $3`, group, after, limitArg(limit))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("list members of group %s: %w", group, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list members of group %s: %w", group, err)
	}
	return ids, nil
}
