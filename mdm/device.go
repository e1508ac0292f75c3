package mdm

import "time"

// Device is Sundial's record of one enrollment (a Mac's device channel, or a
// user channel on it). Secrets (push token, push magic, bootstrap token) live
// here too and must never be logged or shown through the admin API.
type Device struct {
	ID       string `json:"id"`
	UDID     string `json:"udid,omitempty"`
	ParentID string `json:"parent_id,omitempty"` // the device enrollment of a user channel
	Topic    string `json:"topic,omitempty"`

	// From Authenticate.
	SerialNumber string `json:"serial_number,omitempty"`
	ProductName  string `json:"product_name,omitempty"`
	Model        string `json:"model,omitempty"`
	ModelName    string `json:"model_name,omitempty"`
	DeviceName   string `json:"device_name,omitempty"`
	OSVersion    string `json:"os_version,omitempty"`
	BuildVersion string `json:"build_version,omitempty"`

	// Enabled is true between TokenUpdate and CheckOut or a new Authenticate.
	Enabled         bool      `json:"enabled"`
	CertHash        string    `json:"cert_hash,omitempty"`
	AuthenticatedAt time.Time `json:"authenticated_at,omitzero"`
	EnrolledAt      time.Time `json:"enrolled_at,omitzero"` // first TokenUpdate after Authenticate
	CheckedOutAt    time.Time `json:"checked_out_at,omitzero"`
	LastSeen        time.Time `json:"last_seen,omitzero"`

	PushToken    []byte `json:"push_token,omitempty"`
	PushMagic    string `json:"push_magic,omitempty"`
	TokenInvalid bool   `json:"token_invalid,omitempty"`

	BootstrapToken []byte    `json:"bootstrap_token,omitempty"` // sealed at rest
	BootstrapAt    time.Time `json:"bootstrap_at,omitzero"`

	// Push state, kept beside the record (see storage.PushStore).
	LastPush PushState `json:"last_push"`

	Inventory            Inventory `json:"inventory"`
	InventoryAt          time.Time `json:"inventory_at,omitzero"`
	InventoryRequestedAt time.Time `json:"inventory_requested_at,omitzero"`
}

// PushState is the outcome of the last push to an enrollment and its
// re-push schedule.
type PushState struct {
	At         time.Time `json:"at,omitzero"`
	Outcome    string    `json:"outcome,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	Attempt    int       `json:"attempt,omitempty"`
	NextRepush time.Time `json:"next_repush,omitzero"`
}

// Redacted returns a copy without secrets, safe for the admin API and logs.
func (d Device) Redacted() Device {
	d.PushToken = nil
	d.PushMagic = ""
	d.BootstrapToken = nil
	return d
}

// BootstrapTokenEscrowed reports whether the Mac has escrowed its bootstrap
// token with Sundial (Apple silicon needs it for MDM-driven installs).
func (d Device) BootstrapTokenEscrowed() bool { return len(d.BootstrapToken) > 0 }

// CommandRecord is a command queued for one enrollment, with its status
// history. Status is "Queued" until the device reports on it.
type CommandRecord struct {
	EnrollmentID string           `json:"enrollment_id"`
	UUID         string           `json:"command_uuid"`
	RequestType  string           `json:"request_type"`
	Raw          []byte           `json:"raw"`
	Seq          uint64           `json:"seq"`
	Status       string           `json:"status"`
	QueuedAt     time.Time        `json:"queued_at"`
	UpdatedAt    time.Time        `json:"updated_at"`
	NotNowCount  int              `json:"not_now_count,omitempty"`
	ErrorChain   []ErrorChainItem `json:"error_chain,omitempty"`
	Result       []byte           `json:"result,omitempty"` // the raw body of the final report
	History      []StatusEvent    `json:"history"`
}

// StatusQueued is the status of a command no device has reported on yet.
const StatusQueued = "Queued"

// StatusCanceled is the status of a command dropped from the queue because
// the device re-enrolled.
const StatusCanceled = "Canceled"

// StatusEvent is one entry of a command's status history.
type StatusEvent struct {
	Status string    `json:"status"`
	At     time.Time `json:"at"`
}

// AppendStatus adds ev to a command's history. Repeated NotNows collapse
// into one entry holding the time of the latest (the record's NotNowCount
// counts them), so a Mac answering NotNow at every connect cannot grow the
// record without bound.
func AppendStatus(h []StatusEvent, ev StatusEvent) []StatusEvent {
	if ev.Status == string(NotNow) && len(h) > 0 && h[len(h)-1].Status == string(NotNow) {
		h[len(h)-1].At = ev.At
		return h
	}
	return append(h, ev)
}

// Pending reports whether the command is still in the queue.
func (c *CommandRecord) Pending() bool {
	return !Status(c.Status).Final() && c.Status != StatusCanceled
}
