package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

var _ scheduler.ReadinessInputStore = (*Store)(nil)

// readinessDevice is the part of a stored device record the forecast
// reads; decoding into it skips the rest of the record without keeping it.
type readinessDevice struct {
	ParentID     string `json:"parent_id"`
	SerialNumber string `json:"serial_number"`
	Inventory    struct {
		SerialNumber            string  `json:"serial_number"`
		AvailableDeviceCapacity float64 `json:"available_device_capacity_gb"`
	} `json:"inventory"`
}

// ReadinessInputs implements scheduler.ReadinessInputStore: one cursor
// walk of the states in one read transaction, the phase read before the
// rest of a state is decoded, and the device, membership, last check-in
// and agent looked up by key in the same transaction.
func (s *Store) ReadinessInputs(ctx context.Context, after string, limit int, until time.Time) ([]scheduler.ReadinessRow, string, error) {
	var (
		out  []scheduler.ReadinessRow
		next string
	)
	err := s.db.View(func(tx *bbolt.Tx) error {
		devices, seen, members, agents := tx.Bucket(bDevices), tx.Bucket(bSeen), tx.Bucket(bMSMember), tx.Bucket(bAgent)
		c := tx.Bucket(bMSState).Cursor()
		k, v := c.Seek([]byte(after))
		if k != nil && string(k) == after {
			k, v = c.Next()
		}
		last := ""
		for n := 0; k != nil; k, v = c.Next() {
			if limit > 0 && n == limit {
				next = last
				break
			}
			n++
			last = string(k)
			gp, err := groupPhase(last, v)
			if err != nil {
				return err
			}
			if !scheduler.Forecastable(gp.Phase) || bytes.IndexByte(k, ':') >= 0 {
				continue
			}
			dv := devices.Get(k)
			if dv == nil {
				continue
			}
			st, err := decodeState(last, v)
			if err != nil {
				return err
			}
			if !st.Deadline.IsZero() && st.Deadline.After(until) {
				continue
			}
			var d readinessDevice
			if !scanReadinessDevice(dv, &d) {
				d = readinessDevice{}
				if err := json.Unmarshal(dv, &d); err != nil {
					return fmt.Errorf("decode device %s: %w", k, err)
				}
			}
			if d.ParentID != "" {
				continue
			}
			row := scheduler.ReadinessRow{State: st, GroupID: scheduler.DefaultGroupID, SerialNumber: d.SerialNumber,
				InventorySerial: d.Inventory.SerialNumber, FreeGB: d.Inventory.AvailableDeviceCapacity, LastSeen: fromNanos(seen.Get(k))}
			if g := members.Get(k); g != nil {
				row.GroupID = string(g)
			}
			if av := agents.Get(k); av != nil {
				var a struct {
					LastReportAt time.Time `json:"last_report_at"`
				}
				if err := json.Unmarshal(av, &a); err != nil {
					return fmt.Errorf("decode agent of %s: %w", k, err)
				}
				row.AgentReportAt = a.LastReportAt
			}
			out = append(out, row)
		}
		return nil
	})
	return out, next, err
}
