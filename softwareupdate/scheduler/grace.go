package scheduler

import (
	"fmt"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate"
)

// DefaultOfflineGrace is how long a Mac that was offline at its deadline
// has after its first check-in before the forced install.
const DefaultOfflineGrace = 4 * time.Hour

// MaxOfflineGrace bounds WithOfflineGrace.
const MaxOfflineGrace = 72 * time.Hour

// WithOfflineGrace sets the offline grace (without the option:
// DefaultOfflineGrace); 0 or negative turns it off: a Mac back after its
// deadline is forced at once.
func WithOfflineGrace(d time.Duration) Option {
	return func(s *Scheduler) {
		switch {
		case d <= 0:
			s.grace = -1
		case d > 0 && d <= MaxOfflineGrace:
			s.grace = d
		}
	}
}

// offlineAtDeadline reports whether a legacy-path Mac in enforce did not
// connect since before its deadline: the command sent before the deadline
// is still unanswered (no NotNow either: a deferring Mac is online), no
// install was sent, and its last inventory is older than the deadline.
func offlineAtDeadline(st *State, deadline time.Time) bool {
	return st.Awaiting != "" && !st.StepAt.IsZero() && st.StepAt.Before(deadline) && st.NotNowCount == 0 &&
		st.Attempts == 0 && st.Facts.InventoryAt.Before(deadline)
}

// offlineGrace holds the forced install of a legacy-path Mac that was
// offline at its deadline until grace after its first check-in: while it
// is away, and then for the grace, its enforcer is asked for the
// countdown's steps (download, status, Start Now) instead of the forced
// install, so the stale download and the forced restart no longer arrive
// in the same session. It returns the decision to give the enforcer and,
// when the grace starts or the Mac is first found away, what to record in
// its history.
// A policy's OfflineGraceHours, when set, replaces the server's grace.
// A business calendar moves the grace's end to working time in loc.
func (s *Scheduler) offlineGrace(st *State, pol *softwareupdate.Policy, dec softwareupdate.Decision, deadline, now time.Time,
	cal *softwareupdate.WorkCalendar, loc *time.Location) (softwareupdate.Decision, string) {
	if st.Path == softwareupdate.PathDeclarative {
		return dec, "" // declarativeGrace (ddmgrace.go)
	}
	grace, on := s.graceFor(pol)
	if dec.Phase != softwareupdate.PhaseEnforce || st.Path != softwareupdate.PathLegacy || !on {
		st.OfflineAt, st.GraceUntil = time.Time{}, time.Time{}
		return dec, ""
	}
	why := ""
	switch {
	case st.OfflineAt.IsZero() && st.GraceUntil.IsZero():
		if !offlineAtDeadline(st, deadline) {
			return dec, ""
		}
		st.OfflineAt = now
		why = fmt.Sprintf("offline at its deadline: the forced install waits until %s after its first check-in (offline grace)", grace)
	case st.GraceUntil.IsZero():
		if st.Awaiting != "" && !st.StepAt.After(st.OfflineAt) {
			break // still away: nothing answered since (a step sent when it was found away included)
		}
		st.GraceUntil = now.Add(grace)
		moved := ""
		if until, w := cal.Next(st.GraceUntil, 0, loc); w != "" {
			st.GraceUntil, moved = until, " (moved to working time: "+softwareupdate.MoveText(w, until, loc)+")"
		}
		why = "back after its deadline: offline grace until " + st.GraceUntil.Format(time.RFC3339) + moved + ", then the forced install"
	case !now.Before(st.GraceUntil):
		return dec, ""
	}
	held := dec
	held.Phase = softwareupdate.PhaseCountdown
	held.NextChange = st.GraceUntil
	return held, why
}
