package webhook

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"slices"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// Event types. An endpoint subscribes to a subset (none listed: all).
const (
	TypePhaseChanged      = "device.phase_changed"
	TypeFailed            = "device.failed"
	TypeCompliant         = "device.compliant"
	TypeExceptionGranted  = "exception.granted"
	TypeExceptionExpiring = "exception.expiring"
	TypeCatalogRelease    = "catalog.new_release"
	TypeTest              = "webhook.test"
)

// Types lists every event type, for validation and the CLI's help.
var Types = []string{TypePhaseChanged, TypeFailed, TypeCompliant, TypeExceptionGranted,
	TypeExceptionExpiring, TypeCatalogRelease, TypeTest}

// Valid reports whether t is a known event type.
func Valid(t string) bool { return slices.Contains(Types, t) }

// Event is the JSON body of every delivery. ID is unique per event and the
// same on every retry and every endpoint, so receivers dedupe on it.
type Event struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Created time.Time       `json:"created"`
	Data    json.RawMessage `json:"data"`
}

// PhaseData is the data of the device events.
type PhaseData struct {
	DeviceID string               `json:"device_id"`
	From     softwareupdate.Phase `json:"from,omitempty"`
	To       softwareupdate.Phase `json:"to"`
	Target   string               `json:"target,omitempty"`
	Deadline time.Time            `json:"deadline,omitzero"`
	Reason   string               `json:"reason,omitempty"`
}

// NewID returns a random 128-bit event ID in hex.
func NewID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand panics rather than return an error)
	return hex.EncodeToString(b[:])
}

// New builds an event of type typ with data marshalled to JSON.
func New(typ string, created time.Time, data any) (Event, error) {
	b, err := json.Marshal(data)
	if err != nil {
		return Event{}, err
	}
	return Event{ID: NewID(), Type: typ, Created: created.UTC(), Data: b}, nil
}

// CommitEvents derives the events of one scheduler commit from its phase
// transitions: every change gives device.phase_changed, and a change into
// failed or compliant also gives device.failed or device.compliant.
func CommitEvents(c *scheduler.Commit, now time.Time) []Event {
	if c.State == nil {
		return nil
	}
	var out []Event
	for _, h := range c.History {
		if h.Kind != scheduler.EventPhase || h.From == h.To {
			continue
		}
		at := h.At
		if at.IsZero() {
			at = now
		}
		d := PhaseData{DeviceID: c.State.DeviceID, From: h.From, To: h.To, Target: h.Target, Deadline: h.Deadline, Reason: h.Reason}
		types := []string{TypePhaseChanged}
		switch h.To {
		case softwareupdate.PhaseFailed:
			types = append(types, TypeFailed)
		case softwareupdate.PhaseCompliant:
			types = append(types, TypeCompliant)
		}
		for _, typ := range types {
			if e, err := New(typ, at, d); err == nil {
				out = append(out, e)
			}
		}
	}
	return out
}

// Deliveries fans events out to the endpoints subscribed to their type,
// ready for storage.WebhookOutbox (due at once).
func Deliveries(events []Event, endpoints []storage.WebhookEndpoint) ([]storage.WebhookDelivery, error) {
	var out []storage.WebhookDelivery
	for _, e := range events {
		body, err := json.Marshal(e)
		if err != nil {
			return nil, err
		}
		for _, ep := range endpoints {
			if !ep.Wants(e.Type) {
				continue
			}
			out = append(out, storage.WebhookDelivery{EventID: e.ID, Endpoint: ep.ID, Type: e.Type,
				Created: e.Created, Body: body, NextAt: e.Created})
		}
	}
	return out, nil
}

// HasEvents reports whether any commit carries a phase change, so a store
// can skip the endpoint lookup on the commit path when none does.
func HasEvents(commits []scheduler.Commit) bool {
	for i := range commits {
		for _, h := range commits[i].History {
			if h.Kind == scheduler.EventPhase && h.From != h.To {
				return true
			}
		}
	}
	return false
}

// CommitsDeliveries is what a store enqueues inside the transaction that
// commits commits: their events fanned out to endpoints.
func CommitsDeliveries(commits []scheduler.Commit, endpoints []storage.WebhookEndpoint, now time.Time) ([]storage.WebhookDelivery, error) {
	if len(endpoints) == 0 {
		return nil, nil
	}
	var events []Event
	for i := range commits {
		events = append(events, CommitEvents(&commits[i], now)...)
	}
	return Deliveries(events, endpoints)
}

// ExceptionEvent is the exception.granted event of an exception record
// (a new or changed device or group exception).
func ExceptionEvent(rec *scheduler.ExceptionRecord, now time.Time) (Event, error) {
	at := rec.CreatedAt
	if at.IsZero() {
		at = now
	}
	return New(TypeExceptionGranted, at, rec)
}
