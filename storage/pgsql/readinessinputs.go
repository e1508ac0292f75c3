package pgsql

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

var _ scheduler.ReadinessInputStore = (*Store)(nil)

// readinessInputsSQL lists a page of states with the device, membership
// and agent columns the forecast reads, in one statement (one snapshot).
// The joins are outer so that a page counts every state it examines.
const readinessInputsSQL = `
SELECT s.device_id, coalesce(s.state->>'phase', ''), s.state, d.id IS NOT NULL, coalesce(d.parent_id, ''),
	coalesce(d.serial_number, ''), coalesce(d.inventory, '{}'), d.last_seen, m.group_id, a.last_report_at
FROM ms_states s
LEFT JOIN devices d ON d.id = s.device_id
LEFT JOIN ms_members m ON m.device_id = s.device_id
LEFT JOIN agents a ON a.id = s.device_id
WHERE s.device_id > $1 ORDER BY s.device_id LIMIT $2`

// ReadinessInputs implements scheduler.ReadinessInputStore: one query per
// page; a state is decoded only when its phase is forecastable, and only
// the inventory's serial number and free space are decoded.
func (s *Store) ReadinessInputs(ctx context.Context, after string, limit int, until time.Time,
	buf []scheduler.ReadinessRow) ([]scheduler.ReadinessRow, string, error) {
	rows, err := s.pool.Query(ctx, readinessInputsSQL, after, limitArg(limit))
	if err != nil {
		return nil, "", fmt.Errorf("list readiness inputs: %w", err)
	}
	var (
		out  = buf[:0]
		n    int
		last string
	)
	err = forEachRow(rows, func(row pgx.CollectableRow) error {
		var (
			id, phase, parent, serial string
			raw, inv                  []byte
			hasDevice                 bool
			group                     *string
			r                         scheduler.ReadinessRow
		)
		if err := row.Scan(&id, &phase, &raw, &hasDevice, &parent, &serial, &inv, scanTime(&r.LastSeen), &group,
			scanTime(&r.AgentReportAt)); err != nil {
			return err
		}
		n, last = n+1, id
		if !hasDevice || parent != "" || strings.Contains(id, ":") || !scheduler.Forecastable(softwareupdate.Phase(phase)) {
			return nil
		}
		if err := json.Unmarshal(raw, &r.State); err != nil {
			return fmt.Errorf("decode update state %s: %w", id, err)
		}
		if !r.State.Deadline.IsZero() && r.State.Deadline.After(until) {
			return nil
		}
		var iv struct {
			SerialNumber            string  `json:"serial_number"`
			AvailableDeviceCapacity float64 `json:"available_device_capacity_gb"`
		}
		if err := json.Unmarshal(inv, &iv); err != nil {
			return fmt.Errorf("decode inventory of %s: %w", id, err)
		}
		r.GroupID, r.SerialNumber, r.InventorySerial, r.FreeGB = scheduler.DefaultGroupID, serial, iv.SerialNumber, iv.AvailableDeviceCapacity
		if group != nil {
			r.GroupID = *group
		}
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("list readiness inputs: %w", err)
	}
	if limit > 0 && n == limit {
		return out, last, nil
	}
	return out, "", nil
}
