package pgsql

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/sundial-mdm/sundial/internal/webhook"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

var _ scheduler.PauseStore = (*Store)(nil)

var pausesTable = jsonTable{table: "ms_pauses", key: "group_id", what: "pause"}

// PutPause implements scheduler.PauseStore; rollout.paused goes to the
// outbox in the same transaction.
func (s *Store) PutPause(ctx context.Context, p scheduler.Pause, audit *scheduler.AuditEntry) error {
	var groups []string
	if p.GroupID != scheduler.FleetPause {
		groups = []string{p.GroupID}
	}
	ev, err := webhook.PausedEvent(&p)
	if err != nil {
		return err
	}
	return pausesTable.putEvents(ctx, s, p.GroupID, p, groups, audit, []webhook.Event{ev})
}

// DeletePause implements scheduler.PauseStore; rollout.resumed, naming the
// pause that ends and the audit entry's actor, goes to the outbox in the
// same transaction.
func (s *Store) DeletePause(ctx context.Context, group string, audit *scheduler.AuditEntry) error {
	return pausesTable.deleteEvents(ctx, s, group, audit, func(raw []byte) ([]webhook.Event, error) {
		var old scheduler.Pause
		if err := json.Unmarshal(raw, &old); err != nil {
			return nil, fmt.Errorf("decode pause of %q: %w", group, err)
		}
		actor, at := "", old.At
		if audit != nil {
			actor, at = audit.Actor, audit.At
		}
		ev, err := webhook.ResumedEvent(&old, actor, at)
		if err != nil {
			return nil, err
		}
		return []webhook.Event{ev}, nil
	})
}

// Pauses implements scheduler.PauseStore.
func (s *Store) Pauses(ctx context.Context) ([]scheduler.Pause, error) {
	return loadJSON[scheduler.Pause](ctx, s, pausesTable)
}
