package ddm

import (
	"context"
	"encoding/json"
	"time"
)

// HistoryLimit is how many status events a store keeps per device; older
// ones are dropped.
const HistoryLimit = 100

// Store keeps Sundial's declarative state per enrollment. Backends pass
// storagetest.RunDDM. Storage never reads the clock.
type Store interface {
	// DDMRecord returns the enrollment's record; an enrollment without one
	// gives a zero Record and no error.
	DDMRecord(ctx context.Context, id string) (*Record, error)
	// UpdateDDM loads the record (zero if none), calls fn on it and, if fn
	// returns nil, stores the record and appends the events fn returned to
	// the enrollment's history (keeping the newest HistoryLimit), all in one
	// transaction. If fn returns an error nothing is written and that error
	// is returned.
	UpdateDDM(ctx context.Context, id string, fn func(r *Record) ([]Event, error)) error
	// DDMHistory returns the enrollment's status events, oldest first.
	DDMHistory(ctx context.Context, id string) ([]Event, error)
	// DDMUnconfirmed lists enrollments with an enforcement that is not
	// Confirmed and whose Deadline is before `before`, earliest deadline
	// first; limit <= 0 means all.
	DDMUnconfirmed(ctx context.Context, before time.Time, limit int) ([]string, error)
}

// Record is the declarative state of one enrollment: what Sundial wants the
// device to have, and what the device last reported.
type Record struct {
	// Enforcement is the desired enforcement; nil when none.
	Enforcement *EnforcementState `json:"enforcement,omitempty"`
	// SetChangedAt is when the declaration set last changed (the tokens
	// Timestamp).
	SetChangedAt time.Time `json:"set_changed_at,omitzero"`
	// SyncSentAt is when a DeclarativeManagement command was last queued.
	SyncSentAt time.Time `json:"sync_sent_at,omitzero"`
	// NeedsSync is set when the device re-enrolled: the next TokenUpdate
	// queues a DeclarativeManagement command.
	NeedsSync bool `json:"needs_sync,omitempty"`
	// Status is the device's status channel state.
	Status DeviceStatus `json:"status"`
}

// Unconfirmed reports whether the record has an enforcement the device has
// not confirmed. Backends index records by this and Enforcement.Deadline.
func (r *Record) Unconfirmed() bool { return r.Enforcement != nil && !r.Enforcement.Confirmed }

// EnforcementState is the desired enforcement and what the device said of it.
type EnforcementState struct {
	Payload     EnforcementPayload `json:"payload"`
	Deadline    time.Time          `json:"deadline"`
	Zone        string             `json:"zone"`
	ServerToken string             `json:"server_token"` // of the enforcement declaration
	SetAt       time.Time          `json:"set_at"`
	// Confirmed: the device reported the declaration active and valid with
	// ServerToken.
	Confirmed   bool      `json:"confirmed,omitempty"`
	ConfirmedAt time.Time `json:"confirmed_at,omitzero"`
	// Failure is set while the device reports the current declaration
	// inactive or invalid.
	Failure *DeclarationStatus `json:"failure,omitempty"`
	// FetchedAt is when the device first fetched an enforcement
	// declaration of this enforcement (any content since it was set): from
	// then on macOS holds one and enforces it on its own clock.
	FetchedAt time.Time `json:"fetched_at,omitzero"`
}

// DeviceStatus is the merged state of every status report of a device.
type DeviceStatus struct {
	// Items holds every status item reported, by dotted name: a full report
	// replaces them, an incremental one is merged item by item.
	Items   map[string]json.RawMessage `json:"items,omitempty"`
	Current Current                    `json:"current"`
	// Declarations is the last management.declarations reported.
	Declarations []DeclarationStatus `json:"declarations,omitempty"`
	// Errors are the Errors of the last report.
	Errors         []StatusError `json:"errors,omitempty"`
	Reports        int           `json:"reports"`
	LastReport     time.Time     `json:"last_report,omitzero"`
	LastFullReport time.Time     `json:"last_full_report,omitzero"`
}

// Event is one entry of a device's status history: a report, summarised.
type Event struct {
	At         time.Time `json:"at"`
	FullReport bool      `json:"full_report,omitempty"`
	// Items names the status items the report carried.
	Items []string `json:"items"`
	// Current is the merged state after the report.
	Current Current `json:"current"`
	// Enforcement is the enforcement's state after the report: "", pending,
	// confirmed or failed.
	Enforcement string `json:"enforcement,omitempty"`
	// Reasons are Apple's reasons when the enforcement failed.
	Reasons []Reason `json:"reasons,omitempty"`
}
