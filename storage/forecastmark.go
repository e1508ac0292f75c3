package storage

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// ForecastMark is a Mac's readiness forecast as the scheduler leader's
// last check recorded it, so that the next check announces only Macs
// whose forecast changed (device.at_risk, device.ready).
type ForecastMark struct {
	DeviceID string `json:"device_id"`
	GroupID  string `json:"group_id,omitempty"`
	// Forecast is the forecast ("will comply on time", "at risk", "will fail").
	Forecast string `json:"forecast"`
	// Causes are the names of the checks that failed (stable from check to
	// check, unlike the reasons, which say how long ago).
	Causes []string `json:"causes,omitempty"`
	// Reasons are the forecast's reasons when it was recorded.
	Reasons  []string  `json:"reasons,omitempty"`
	Target   string    `json:"target,omitempty"`
	Deadline time.Time `json:"deadline,omitzero"`
	// Since is when the Mac's forecast became Forecast.
	Since time.Time `json:"since"`
}

// Bounds of a ForecastMark, checked where it is written: one mark per
// Mac, at most MaxForecastItems causes and reasons of MaxForecastText bytes.
const (
	MaxForecastItems = 12
	MaxForecastText  = 512
)

// CheckForecastMark rejects a mark the store must not keep.
func CheckForecastMark(m *ForecastMark) error {
	switch {
	case m.DeviceID == "" || len(m.DeviceID) > 256:
		return errors.New("forecast mark: device ID must be 1-256 bytes")
	case len(m.GroupID) > 256 || len(m.Target) > 64:
		return errors.New("forecast mark: group or target too long")
	case m.Forecast == "" || len(m.Forecast) > 64:
		return errors.New("forecast mark: forecast must be 1-64 bytes")
	case len(m.Causes) > MaxForecastItems || len(m.Reasons) > MaxForecastItems:
		return fmt.Errorf("forecast mark: at most %d causes and reasons", MaxForecastItems)
	case m.Since.IsZero():
		return errors.New("forecast mark: no time")
	}
	for _, s := range append(append([]string(nil), m.Causes...), m.Reasons...) {
		if len(s) > MaxForecastText || !utf8.ValidString(s) {
			return fmt.Errorf("forecast mark: a cause or reason is not UTF-8 of at most %d bytes", MaxForecastText)
		}
	}
	return nil
}

// ForecastMarkStore keeps each Mac's last recorded forecast.
type ForecastMarkStore interface {
	// ForecastMarks lists every mark, by device ID.
	ForecastMarks(ctx context.Context) ([]ForecastMark, error)
	// UpdateForecastMarks, in one transaction, stores put (replacing each
	// Mac's mark), removes the marks of drop (unknown ones are skipped) and
	// queues deliveries in the webhook outbox (an existing (event,
	// endpoint) pair is kept): a forecast change is never recorded without
	// its events. A mark or delivery that fails its check changes nothing.
	UpdateForecastMarks(ctx context.Context, put []ForecastMark, drop []string, deliveries []WebhookDelivery) error
}

// CheckForecastUpdate checks every mark and delivery of an
// UpdateForecastMarks call.
func CheckForecastUpdate(put []ForecastMark, deliveries []WebhookDelivery) error {
	for i := range put {
		if err := CheckForecastMark(&put[i]); err != nil {
			return err
		}
	}
	for i := range deliveries {
		if err := CheckWebhookDelivery(&deliveries[i]); err != nil {
			return err
		}
	}
	return nil
}
