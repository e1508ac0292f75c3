package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// ReadinessWindowDays is how far ahead the leader's readiness check looks:
// the Macs whose deadline is within it (or has passed), as `sundial
// readiness` does by default.
const ReadinessWindowDays = 7

// ForecastData is the data of device.at_risk and device.ready.
type ForecastData struct {
	DeviceID     string    `json:"device_id"`
	SerialNumber string    `json:"serial_number,omitempty"`
	GroupID      string    `json:"group_id,omitempty"`
	Target       string    `json:"target,omitempty"`
	Deadline     time.Time `json:"deadline,omitzero"`
	// Forecast is the new forecast ("at risk", "will fail", "will comply
	// on time"), From the one announced before ("" for none); a Mac that
	// left the forecast (compliant, exempt, its deadline moved out of the
	// window) is announced ready with Forecast "" and a Note.
	Forecast string   `json:"forecast"`
	From     string   `json:"from,omitempty"`
	Reasons  []string `json:"reasons,omitempty"`
	Note     string   `json:"note,omitempty"`
}

// ReadinessSource forecasts the Macs whose deadline is within days, one
// at a time (scheduler.Forecaster).
type ReadinessSource interface {
	EachForecast(ctx context.Context, group string, days int, fn func(*scheduler.MacReadiness) error) error
}

// ForecastStore is what CheckReadiness reads and writes.
type ForecastStore interface {
	Endpoints
	storage.ForecastMarkStore
}

// Causes are the stable names of what puts m at risk: its failed checks,
// and "paused" or "failed" when the pause or a failure is why. Two
// forecasts with the same causes differ only in wording ("silent for 49 h"
// against "for 50 h"), which is not worth a write.
func Causes(m *scheduler.MacReadiness) []string {
	var out []string
	for _, c := range m.Checks {
		if !c.OK {
			if out == nil { // one allocation for the usual few causes
				out = make([]string, 0, len(m.Checks)+1)
			}
			out = append(out, c.Name)
		}
	}
	if m.Phase == softwareupdate.PhasePaused {
		out = append(out, "paused")
	}
	if m.Phase == softwareupdate.PhaseFailed {
		out = append(out, "failed")
	}
	return out
}

// clip bounds a mark's list to the store's limits, cutting at a rune. A
// list within them is returned as is (the forecast's lists are its own).
func clip(list []string) []string {
	if !slices.ContainsFunc(list, func(s string) bool { return len(s) > storage.MaxForecastText || !utf8.ValidString(s) }) &&
		len(list) <= storage.MaxForecastItems {
		return list
	}
	if len(list) > storage.MaxForecastItems {
		list = list[:storage.MaxForecastItems]
	}
	out := make([]string, len(list))
	for i, s := range list {
		for len(s) > storage.MaxForecastText || !utf8.ValidString(s) {
			s = s[:min(len(s), storage.MaxForecastText)]
			for len(s) > 0 && !utf8.ValidString(s) {
				s = s[:len(s)-1]
			}
		}
		out[i] = s
	}
	return out
}

// forecastID names a forecast change: the Mac, the new forecast and when
// the old one began (for a Mac without a mark, the check's time), so two
// leaders reading the same mark name the same event and the outbox keeps
// one, and a Mac that turns at risk a second time gets a new ID.
func forecastID(typ, device, to string, since time.Time) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%d", device, to, since.UnixNano()))
	return typ + ":" + hex.EncodeToString(sum[:16])
}

// CheckReadiness forecasts the Macs whose deadline is within
// ReadinessWindowDays and announces the forecasts that changed since the
// last check: device.at_risk for a Mac that turns at risk or will fail
// (or moves between the two), device.ready for one that turns on time or
// leaves the forecast. Only Macs at risk keep a mark (a Mac without one
// is on time or never forecast), so the marks stay as few as the Macs
// needing attention. Marks and events are written in one transaction.
// It returns how many Macs changed forecast.
func CheckReadiness(ctx context.Context, s ForecastStore, src ReadinessSource, now time.Time) (int, error) {
	list, err := s.ForecastMarks(ctx)
	if err != nil {
		return 0, err
	}
	marks := make(map[string]*storage.ForecastMark, len(list))
	for i := range list {
		marks[list[i].DeviceID] = &list[i]
	}
	var put []storage.ForecastMark
	var drop []string
	var events []Event
	announce := func(typ string, since time.Time, d ForecastData) error {
		e, err := New(typ, now, d)
		if err != nil {
			return err
		}
		e.ID = forecastID(typ, d.DeviceID, d.Forecast, since)
		events = append(events, e)
		return nil
	}
	err = src.EachForecast(ctx, "", ReadinessWindowDays, func(m *scheduler.MacReadiness) error {
		old := marks[m.DeviceID]
		delete(marks, m.DeviceID)
		if m.Forecast == scheduler.ForecastOnTime && old == nil {
			return nil
		}
		// Most Macs at risk stay so from check to check: compare before
		// building the event's data, which only a change needs.
		var causes []string
		changed := old == nil || old.Forecast != string(m.Forecast)
		if m.Forecast != scheduler.ForecastOnTime {
			causes = clip(Causes(m))
			if !changed && slices.Equal(old.Causes, causes) && old.Deadline.Equal(m.Deadline) && old.GroupID == m.GroupID &&
				old.Target == m.Target {
				return nil
			}
		}
		d := ForecastData{DeviceID: m.DeviceID, SerialNumber: m.SerialNumber, GroupID: m.GroupID, Target: m.Target,
			Deadline: m.Deadline, Forecast: string(m.Forecast), Reasons: clip(m.Reasons)}
		since := now
		if old != nil {
			d.From, since = old.Forecast, old.Since
		}
		if m.Forecast == scheduler.ForecastOnTime {
			drop = append(drop, m.DeviceID)
			return announce(TypeDeviceReady, since, d)
		}
		mark := storage.ForecastMark{DeviceID: m.DeviceID, GroupID: m.GroupID, Forecast: string(m.Forecast), Causes: causes,
			Reasons: d.Reasons, Target: m.Target, Deadline: m.Deadline, Since: now}
		if !changed {
			mark.Since = old.Since
		}
		put = append(put, mark)
		if changed {
			return announce(TypeDeviceAtRisk, since, d)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for id, old := range marks {
		drop = append(drop, id)
		d := ForecastData{DeviceID: id, GroupID: old.GroupID, Target: old.Target, Deadline: old.Deadline, From: old.Forecast,
			Note: "no longer forecast: compliant, exempt, or its deadline is no longer within the window"}
		if err := announce(TypeDeviceReady, old.Since, d); err != nil {
			return 0, err
		}
	}
	if len(put) == 0 && len(drop) == 0 {
		return 0, nil
	}
	var ds []storage.WebhookDelivery
	if len(events) > 0 {
		eps, err := s.WebhookEndpoints(ctx)
		if err != nil {
			return 0, err
		}
		if ds, err = Deliveries(events, eps); err != nil {
			return 0, err
		}
	}
	slices.Sort(drop)
	if err := s.UpdateForecastMarks(ctx, put, drop, ds); err != nil {
		return 0, err
	}
	return len(events), nil
}
