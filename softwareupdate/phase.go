package softwareupdate

import (
	"time"
)

// Phase is where a Mac stands in the escalation toward its deadline.
type Phase string

// Phases. For a Mac that must update, with personal deadline D:
// pending before D-5 days, notify from D-5 days, countdown from D, enforce
// from D+30 minutes. The others are outcomes that stop or suspend escalation.
const (
	PhaseUnmanaged   Phase = "unmanaged"   // the policy does not manage updates
	PhaseUnknown     Phase = "unknown"     // OS version never reported: not enforced
	PhaseCompliant   Phase = "compliant"   // at or above the target
	PhaseUnsupported Phase = "unsupported" // hardware cannot install the target
	PhaseExempt      Phase = "exempt"      // an active exemption
	PhaseFailed      Phase = "failed"      // a failure to surface (see Decision.Reason)
	PhaseIneligible  Phase = "ineligible"  // Sundial may not manage this Mac's updates (see Decision.Reason)
	PhasePending     Phase = "pending"     // before the notification window
	PhaseNotify      Phase = "notify"      // D-5 days to D: download, notify
	PhaseCountdown   Phase = "countdown"   // D to D+30 min: the countdown
	PhaseEnforce     Phase = "enforce"     // after D+30 min: force the install
	PhasePaused      Phase = "paused"      // an admin's pause holds every forced step (scheduler kill switch)
)

// Escalation windows around the personal deadline D.
const (
	NotifyWindow    = 5 * 24 * time.Hour // notify starts at D - NotifyWindow
	CountdownWindow = 30 * time.Minute   // enforce starts at D + CountdownWindow
)

// DeviceState is what Decide needs besides the clock and the deadline.
type DeviceState struct {
	// Target is the Mac's resolved target (ResolveTarget).
	Target Target
	// Failure is a failure the enforcer surfaced, such as
	// "DownloadInsufficientSpace", "InstallFailed" or "missing bootstrap
	// token"; empty if none.
	Failure string
	// RetryAt is when a failure should be retried; zero means wait for an
	// event (a check-in, a fix by the admin) that clears Failure.
	RetryAt time.Time
	// Exception is the Mac's exception, active or not; nil if none.
	Exception *Exception
	// Ineligible says why Apple does not let an MDM manage this Mac's
	// updates (e.g. "not supervised"); empty if it may.
	Ineligible string
}

// Decision is the phase a Mac is in and when that will change.
type Decision struct {
	Phase Phase
	// Reason explains the phase in a sentence for reports and history.
	Reason string
	// Deadline is the personal deadline the decision was made against.
	Deadline time.Time
	// NextChange is the next instant at which Decide's answer changes by
	// the passage of time alone, for the scheduler's due-time index. Zero
	// means only an event (a check-in, a command result, a policy or catalog
	// change) can change it.
	NextChange time.Time
}

// Decide returns the phase of a Mac at instant now, given its state and
// personal deadline (PersonalDeadline). It is a pure function: a Mac that
// stays offline through its deadline is still in PhaseEnforce when it
// returns, and the enforcer acts at its next check-in.
//
// Precedence: the target status (unmanaged, unknown, unsupported, compliant)
// comes first; then an active exemption; then ineligibility (with the
// deadline, which the Mac's user is still shown); then a surfaced failure
// until RetryAt; then the time phases. A failure does not move the deadline.
func Decide(now time.Time, st DeviceState, deadline time.Time) Decision {
	switch st.Target.Status {
	case StatusNotManaged:
		return Decision{Phase: PhaseUnmanaged, Reason: orDefault(st.Target.Reason, reasonNotManaged)}
	case StatusUnknownOS:
		return Decision{Phase: PhaseUnknown, Reason: orDefault(st.Target.Reason, reasonUnknownOS)}
	case StatusCompliant:
		return Decision{Phase: PhaseCompliant, Reason: orDefault(st.Target.Reason, reasonCompliant)}
	case StatusUnsupported:
		return Decision{Phase: PhaseUnsupported, Reason: orDefault(st.Target.Reason, "the Mac's hardware cannot install the target")}
	case StatusInvalidPolicy:
		return Decision{Phase: PhaseFailed, Reason: orDefault(st.Target.Reason, "policy cannot be evaluated")}
	case StatusRequired:
	default:
		return Decision{Phase: PhaseFailed, Reason: "target not resolved"}
	}
	if ex := st.Exception; ex != nil && ex.Exempt && ex.Active(now) {
		return Decision{Phase: PhaseExempt, Reason: "exempt until " + ex.Expires.UTC().Format(time.RFC3339) + ": " + ex.Reason,
			Deadline: deadline, NextChange: ex.Expires}
	}
	if st.Ineligible != "" {
		return Decision{Phase: PhaseIneligible, Reason: "ineligible: " + st.Ineligible, Deadline: deadline}
	}
	if st.Failure != "" && (st.RetryAt.IsZero() || now.Before(st.RetryAt)) {
		return Decision{Phase: PhaseFailed, Reason: st.Failure, Deadline: deadline, NextChange: st.RetryAt}
	}
	if deadline.IsZero() {
		return Decision{Phase: PhaseFailed, Reason: "no deadline could be computed for this policy"}
	}
	notify := deadline.Add(-NotifyWindow)
	enforce := deadline.Add(CountdownWindow)
	switch {
	case now.Before(notify):
		return Decision{Phase: PhasePending, Reason: "deadline more than 5 days away", Deadline: deadline, NextChange: notify}
	case now.Before(deadline):
		return Decision{Phase: PhaseNotify, Reason: "deadline within 5 days", Deadline: deadline, NextChange: deadline}
	case now.Before(enforce):
		return Decision{Phase: PhaseCountdown, Reason: "deadline reached: 30-minute countdown", Deadline: deadline, NextChange: enforce}
	}
	return Decision{Phase: PhaseEnforce, Reason: "deadline passed more than 30 minutes ago", Deadline: deadline}
}

func orDefault(s, fallback string) string {
	if s != "" {
		return s
	}
	return fallback
}
