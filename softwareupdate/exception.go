package softwareupdate

import (
	"time"
)

// Exception limits.
const (
	MaxExceptionReason    = 500
	MaxExceptionGrantedBy = 200
	// MaxExceptionLength bounds how far ahead an exception may expire.
	MaxExceptionLength = 366 * 24 * time.Hour
)

// Exception relieves one Mac (or a group) from its policy until Expires:
// either an exemption (nothing is enforced) or a later deadline. When it
// expires the Mac rejoins its policy with a fresh minimum notice counted
// from Expires (see PersonalDeadline). Exceptions only ever give more time.
type Exception struct {
	// Exempt suspends enforcement until Expires.
	Exempt bool `json:"exempt,omitempty"`
	// DeadlineOverride is a later personal deadline; it must not be after
	// Expires.
	DeadlineOverride time.Time `json:"deadline_override,omitzero"`
	// Expires is when the exception ends.
	Expires time.Time `json:"expires"`
	// Reason says why it was granted (for reports and the audit log).
	Reason string `json:"reason"`
	// GrantedBy says who granted it.
	GrantedBy string `json:"granted_by"`
}

// Active reports whether e is in force at now. A nil exception is inactive.
func (e *Exception) Active(now time.Time) bool {
	return e != nil && now.Before(e.Expires)
}

// Validate checks a new exception at instant now: exactly one of Exempt and
// DeadlineOverride; Expires in the future but at most MaxExceptionLength
// ahead; an override in the future and not after Expires; a reason and a
// grantor. It returns nil or a *ValidationError.
func (e *Exception) Validate(now time.Time) error {
	fe := &fieldErrors{what: "exception"}
	hasOverride := !e.DeadlineOverride.IsZero()
	switch {
	case e.Exempt && hasOverride:
		fe.add("exempt", "", ErrMalformed, "choose either an exemption or a deadline override, not both")
	case !e.Exempt && !hasOverride:
		fe.add("exempt", "", ErrMissing, "an exception either exempts the Mac or overrides its deadline")
	}
	switch {
	case e.Expires.IsZero():
		fe.add("expires", "", ErrMissing, "every exception must expire")
	case !e.Expires.After(now):
		fe.add("expires", e.Expires.Format(time.RFC3339), ErrDeadlinePast, "the expiry must be in the future")
	case e.Expires.Sub(now) > MaxExceptionLength:
		fe.add("expires", e.Expires.Format(time.RFC3339), ErrOutOfRange, "at most one year ahead")
	}
	if hasOverride {
		switch {
		case !e.DeadlineOverride.After(now):
			fe.add("deadline_override", e.DeadlineOverride.Format(time.RFC3339), ErrDeadlinePast, "")
		case !e.Expires.IsZero() && e.DeadlineOverride.After(e.Expires):
			fe.add("deadline_override", e.DeadlineOverride.Format(time.RFC3339), ErrOutOfRange, "must not be after the expiry")
		}
	}
	switch {
	case e.Reason == "":
		fe.add("reason", "", ErrMissing, "")
	case len(e.Reason) > MaxExceptionReason:
		fe.add("reason", "", ErrOutOfRange, "at most %d bytes", MaxExceptionReason)
	}
	switch {
	case e.GrantedBy == "":
		fe.add("granted_by", "", ErrMissing, "")
	case len(e.GrantedBy) > MaxExceptionGrantedBy:
		fe.add("granted_by", "", ErrOutOfRange, "at most %d bytes", MaxExceptionGrantedBy)
	}
	return fe.err()
}
