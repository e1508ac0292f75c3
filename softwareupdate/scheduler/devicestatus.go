package scheduler

import (
	"context"
	"fmt"
	"time"
)

// Sources of a failure the Mac itself reported (State.FailureSource).
const (
	FailureFromDeclaration = "declaration" // the Mac refused the enforcement declaration
	FailureFromInstall     = "install"     // the Mac's install of the update failed
)

// DeviceStatus is what a Mac's declarative status channel says of its
// update, as the declarative path reads it.
type DeviceStatus struct {
	// DeclarationFailure is Apple's reason the Mac refused the enforcement
	// declaration (invalid, or valid but inactive); empty if it did not.
	DeclarationFailure string
	// InstallFailure is Apple's reason for a failed install
	// (install-state failed, or a higher failure-reason count).
	InstallFailure string
	// DeclarationApplied: the declaration is reported active and valid.
	DeclarationApplied bool
	// Installing: install-state shows the update under way again.
	Installing bool
	// Compliant: the Mac reports the target version or later.
	Compliant bool
	// RequiresBootstrap: the failed install may need a bootstrap token.
	RequiresBootstrap bool
}

// ReportStatus folds a Mac's status report into its state: a failure it
// reports becomes its failure (phase failed, with Apple's reason, in
// history) until it reports that it recovered: the declaration applied
// after a refusal, the install under way again after a failed one, or the
// target reached.
func (s *Scheduler) ReportStatus(ctx context.Context, id string, ds DeviceStatus) error {
	if ds.DeclarationFailure == "" && ds.InstallFailure == "" && !ds.RequiresBootstrap {
		// Most reports say all is well: only a Mac with a reported
		// failure needs evaluating now; the others share the next pass.
		sts, err := s.store.States(ctx, []string{id})
		if err != nil {
			return fmt.Errorf("load update state: %w", err)
		}
		if st := sts[0]; st == nil || st.FailureSource == "" {
			s.Touch(id)
			return nil
		}
	}
	_, err := s.evaluateOne(ctx, id, func(st *State, now time.Time) ([]Transition, error) {
		fail := func(source, reason string) {
			if st.Failure != reason || st.FailureSource != source {
				st.Fail(clip(reason), now.UTC(), time.Time{})
				st.FailureSource = source
			}
		}
		switch {
		case ds.DeclarationFailure != "":
			fail(FailureFromDeclaration, ds.DeclarationFailure)
		case ds.InstallFailure != "":
			fail(FailureFromInstall, ds.InstallFailure)
		case st.FailureSource != "" && (ds.Compliant ||
			(st.FailureSource == FailureFromDeclaration && ds.DeclarationApplied) ||
			(st.FailureSource == FailureFromInstall && ds.Installing)):
			old := st.Failure
			st.ClearFailure()
			return []Transition{{At: now.UTC(), Kind: EventReset, From: st.Phase, Target: st.Target, Reason: "the Mac recovered from: " + old}}, nil
		}
		if ds.RequiresBootstrap && !st.RequiresBootstrap {
			st.RequiresBootstrap = true
			if NeedsBootstrapToken(st) {
				return []Transition{{At: now.UTC(), Kind: EventResult, From: st.Phase, Target: st.Target, Reason: bootstrapReason(st)}}, nil
			}
		}
		return nil, nil
	})
	return err
}
