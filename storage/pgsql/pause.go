package pgsql

import (
	"context"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

var _ scheduler.PauseStore = (*Store)(nil)

var pausesTable = jsonTable{table: "ms_pauses", key: "group_id", what: "pause"}

// PutPause implements scheduler.PauseStore.
func (s *Store) PutPause(ctx context.Context, p scheduler.Pause, audit *scheduler.AuditEntry) error {
	var groups []string
	if p.GroupID != scheduler.FleetPause {
		groups = []string{p.GroupID}
	}
	return pausesTable.put(ctx, s, p.GroupID, p, groups, audit)
}

// DeletePause implements scheduler.PauseStore.
func (s *Store) DeletePause(ctx context.Context, group string, audit *scheduler.AuditEntry) error {
	return pausesTable.delete(ctx, s, group, audit)
}

// Pauses implements scheduler.PauseStore.
func (s *Store) Pauses(ctx context.Context) ([]scheduler.Pause, error) {
	return loadJSON[scheduler.Pause](ctx, s, pausesTable)
}
