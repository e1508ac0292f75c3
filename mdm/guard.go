package mdm

import "time"

// MaxEnrollmentEvents bounds the enrollment events kept per device.
const MaxEnrollmentEvents = 50

// Enrollment event kinds.
const (
	// EventBound: an Authenticate bound a certificate to a new enrollment.
	EventBound = "bound"
	// EventRebound: an Authenticate re-bound an enrollment to another
	// certificate (a proven re-enrollment).
	EventRebound = "rebound"
	// EventRebindRefused: an Authenticate with another certificate was
	// refused while the bound one is valid and in use.
	EventRebindRefused = "rebind_refused"
	// EventReenrollAllowed: an admin allowed the next re-bind until a time.
	EventReenrollAllowed = "reenroll_allowed"
)

// EnrollmentGuard is what decides whether a new Authenticate may re-bind an
// enrollment to another identity certificate, and the history of bindings.
type EnrollmentGuard struct {
	// CertNotAfter is when the certificate bound at the last Authenticate
	// expires (zero: not known, e.g. bound before it was recorded).
	CertNotAfter time.Time `json:"cert_not_after,omitzero"`
	// ReenrollUntil is the end of an admin's approval for one re-bind.
	ReenrollUntil time.Time `json:"reenroll_until,omitzero"`
	ReenrollBy    string    `json:"reenroll_by,omitempty"`
	// Events are the newest MaxEnrollmentEvents, oldest first.
	Events []EnrollmentEvent `json:"events,omitempty"`
}

// EnrollmentEvent is one binding, re-binding, refusal or approval.
type EnrollmentEvent struct {
	Kind    string    `json:"kind"`
	At      time.Time `json:"at"`
	OldCert string    `json:"old_cert,omitempty"` // SHA-256 of the bound certificate
	NewCert string    `json:"new_cert,omitempty"` // SHA-256 of the presented certificate
	Reason  string    `json:"reason,omitempty"`
	Actor   string    `json:"actor,omitempty"`
}

// AppendEvent adds ev, keeping the newest MaxEnrollmentEvents.
func (g *EnrollmentGuard) AppendEvent(ev EnrollmentEvent) {
	g.Events = append(g.Events, ev)
	if n := len(g.Events) - MaxEnrollmentEvents; n > 0 {
		g.Events = append(g.Events[:0:0], g.Events[n:]...)
	}
}
