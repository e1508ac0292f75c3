package scheduler

import (
	"context"
	"fmt"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/storage"
)

// ReadinessRow is what the readiness forecast reads of one Mac besides its
// state: the few device, membership and agent fields ForecastMac uses.
type ReadinessRow struct {
	State State
	// GroupID is the Mac's group membership (DefaultGroupID without one).
	GroupID string
	// SerialNumber is the serial from Authenticate, InventorySerial the
	// one from the last DeviceInformation.
	SerialNumber    string
	InventorySerial string
	// FreeGB is the inventory's AvailableDeviceCapacity.
	FreeGB   float64
	LastSeen time.Time
	// AgentReportAt is the agent's last report (zero: none, or no agent).
	AgentReportAt time.Time
}

// ReadinessInputStore lists the forecast's inputs page by page, each page
// in one read, decoding only the fields the forecast uses: the readiness
// check otherwise reads every device record whole and each Mac's agent in
// its own transaction (docs/benchmarks.md, "ReadinessCheck100k").
type ReadinessInputStore interface {
	// ReadinessInputs examines up to limit stored update states after
	// `after`, in device ID order, and returns the rows of those whose
	// phase is Forecastable, whose deadline is zero or not after until,
	// and whose device enrollment exists and is a Mac's device channel
	// (no parent, no ':' in its ID). next is the last ID examined when
	// the page is full, "" when no state is left. The rows are appended
	// to buf[:0]: passing the last page's rows back reuses their memory.
	ReadinessInputs(ctx context.Context, after string, limit int, until time.Time, buf []ReadinessRow) (rows []ReadinessRow, next string, err error)
}

// ForecasterOption configures a Forecaster.
type ForecasterOption func(*Forecaster)

// WithReadinessInputs reads every input of the forecast through s (the
// store the Reporter and the agents come from) rather than page by page
// from the device reader plus one agent read per Mac.
func WithReadinessInputs(s ReadinessInputStore) ForecasterOption {
	return func(fc *Forecaster) { fc.inputs = s }
}

// eachInput calls fn with the input of every Mac in the forecast window
// (of group, "" for all) from the input store, in device order. Device
// and agent are built on the stack and only valid during fn.
func (fc *Forecaster) eachInput(ctx context.Context, group string, until time.Time, unconfirmed map[string]bool,
	fn func(*ReadinessInput) error) error {
	var (
		d mdm.Device
		a storage.AgentState
	)
	var rows []ReadinessRow
	for after := ""; ; {
		var next string
		var err error
		// Each page reuses the last one's rows: a State is large, and the
		// forecast keeps none of it.
		rows, next, err = fc.inputs.ReadinessInputs(ctx, after, reportPage, until, rows)
		if err != nil {
			return fmt.Errorf("load readiness inputs: %w", err)
		}
		for i := range rows {
			r := &rows[i]
			if group != "" && r.GroupID != group {
				continue
			}
			d = mdm.Device{ID: r.State.DeviceID, SerialNumber: r.SerialNumber, LastSeen: r.LastSeen}
			d.Inventory.SerialNumber, d.Inventory.AvailableDeviceCapacity = r.InventorySerial, r.FreeGB
			x := ReadinessInput{Device: &d, GroupID: r.GroupID, State: &r.State, DeclarationUnconfirmed: unconfirmed[d.ID]}
			// Without an agent store every Mac counts as without agent,
			// as on the per-Mac path.
			if fc.agents != nil && !r.AgentReportAt.IsZero() {
				a = storage.AgentState{LastReportAt: r.AgentReportAt}
				x.Agent = &a
			}
			if err := fn(&x); err != nil {
				return err
			}
		}
		if next == "" {
			return nil
		}
		after = next
	}
}
