package scheduler

import (
	"fmt"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate"
)

// IneligibleNotSupervised is why a Mac is ineligible when it is not
// supervised: Apple lets an MDM manage software updates only on supervised
// Macs, on both enforcement paths.
const IneligibleNotSupervised = "not supervised"

// ineligibility returns why Sundial may not manage the Mac's updates, or
// "" if it may (or its inventory has not told yet).
func ineligibility(f *Facts) string {
	if f.InventoryAt.IsZero() {
		return ""
	}
	if !f.Supervised {
		return IneligibleNotSupervised
	}
	return ""
}

// BootstrapReader is implemented by enforcers that learn from a command
// result whether the update to target needs a bootstrap token (the legacy
// path: RequiresBootstrapToken in AvailableOSUpdates). known is false when
// the result does not say.
type BootstrapReader interface {
	RequiresBootstrapToken(res Result, target string) (needs, known bool)
}

// observeResult folds what every result says besides the enforcer's own
// reading: NotNow answers to the current step (a Mac deferring it), and
// whether the update needs a bootstrap token. current tells whether the
// result is for the step's command.
func observeResult(st *State, e Enforcer, res Result, current bool, now time.Time) []Transition {
	var out []Transition
	if current {
		switch res.Status {
		case mdm.NotNow:
			if st.NotNowCount == 0 {
				st.NotNowSince = now.UTC()
			}
			st.NotNowCount++
		case mdm.Acknowledged, mdm.Error, mdm.CommandFormatError:
			st.NotNowCount, st.NotNowSince = 0, time.Time{}
		}
	}
	if br, ok := e.(BootstrapReader); ok && res.Status == mdm.Acknowledged && st.Target != "" {
		if needs, known := br.RequiresBootstrapToken(res, st.Target); known && needs != st.RequiresBootstrap {
			st.RequiresBootstrap = needs
			if NeedsBootstrapToken(st) {
				out = append(out, Transition{At: now.UTC(), Kind: EventResult, Step: st.Step, Target: st.Target, From: st.Phase,
					Reason: bootstrapReason(st)})
			}
		}
	}
	return out
}

// NeedsBootstrapToken reports whether the Mac is flagged "needs bootstrap
// token": an Apple silicon Mac whose update needs one (RequiresBootstrap)
// and that has none escrowed, while it still has to update.
func NeedsBootstrapToken(st *State) bool {
	if !st.RequiresBootstrap || !st.Facts.AppleSilicon || st.Facts.Bootstrap {
		return false
	}
	switch st.Phase {
	case softwareupdate.PhasePending, softwareupdate.PhaseNotify, softwareupdate.PhaseCountdown,
		softwareupdate.PhaseEnforce, softwareupdate.PhaseFailed:
		return true
	}
	return false
}

func bootstrapReason(st *State) string {
	return fmt.Sprintf("needs bootstrap token: the update to %s needs one on this Apple silicon Mac and none is escrowed", st.Target)
}

// Display states that refine a phase for admins (see Status).
const (
	StatusDeferring           = "deferring"
	StatusNeedsBootstrapToken = "needs-bootstrap-token"
)

// Status is the state an admin sees for the Mac: "needs-bootstrap-token"
// (NeedsBootstrapToken), "deferring" (past its deadline, the Mac keeps
// answering NotNow to the step sent), else its phase.
func Status(st *State) string {
	switch {
	case NeedsBootstrapToken(st):
		return StatusNeedsBootstrapToken
	case Deferring(st):
		return StatusDeferring
	}
	return string(st.Phase)
}

// Deferring reports whether the Mac is past its deadline (countdown or
// enforce) and has answered NotNow to the step sent (NotNowCount times
// since NotNowSince).
func Deferring(st *State) bool {
	if st.NotNowCount == 0 {
		return false
	}
	return st.Phase == softwareupdate.PhaseCountdown || st.Phase == softwareupdate.PhaseEnforce
}
