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
func (s *Store) ReadinessInputs(ctx context.Context, after string, limit int, until time.Time,
	buf []scheduler.ReadinessRow) ([]scheduler.ReadinessRow, string, error) {
	var (
		out  = buf[:0]
		next string
	)
	err := s.db.View(func(tx *bbolt.Tx) error {
		// One cursor per bucket for the whole page: a Bucket.Get makes a
		// new cursor each time (four per Mac).
		devices, seen, members, agents := tx.Bucket(bDevices).Cursor(), tx.Bucket(bSeen).Cursor(), tx.Bucket(bMSMember).Cursor(),
			tx.Bucket(bAgent).Cursor()
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
			dv := seekGet(devices, k)
			if dv == nil {
				continue
			}
			// Decode into the next row of out (reused from the last page).
			if len(out) < cap(out) {
				out = out[:len(out)+1]
			} else {
				out = append(out, scheduler.ReadinessRow{})
			}
			row := &out[len(out)-1]
			*row = scheduler.ReadinessRow{}
			if err := decodeStateInto(&row.State, last, v); err != nil {
				return err
			}
			if st := &row.State; !st.Deadline.IsZero() && st.Deadline.After(until) {
				out = out[:len(out)-1]
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
				out = out[:len(out)-1]
				continue
			}
			row.GroupID, row.SerialNumber, row.InventorySerial, row.FreeGB = scheduler.DefaultGroupID, d.SerialNumber,
				d.Inventory.SerialNumber, d.Inventory.AvailableDeviceCapacity
			row.LastSeen, row.AgentReportAt = fromNanos(seekGet(seen, k)), time.Time{}
			if g := seekGet(members, k); g != nil {
				row.GroupID = string(g)
			}
			if av := seekGet(agents, k); av != nil {
				var a struct {
					LastReportAt time.Time `json:"last_report_at"`
				}
				if err := json.Unmarshal(av, &a); err != nil {
					return fmt.Errorf("decode agent of %s: %w", k, err)
				}
				row.AgentReportAt = a.LastReportAt
			}
		}
		return nil
	})
	return out, next, err
}

// seekGet is Bucket.Get through a cursor that is reused for every key.
func seekGet(c *bbolt.Cursor, key []byte) []byte {
	k, v := c.Seek(key)
	if !bytes.Equal(k, key) {
		return nil
	}
	return v
}
