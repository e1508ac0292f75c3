package declarative

import (
	"context"
	"fmt"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/ddm"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// Records reads a device's declarative record ((*ddm.Service).Record). A
// DDM given to New that also has it lets the scheduler's offline grace
// tell a Mac that holds its declaration from one that never fetched it.
type Records interface {
	Record(ctx context.Context, id string) (*ddm.Record, error)
}

// StepWithdrawn is the step of a Mac whose declaration was withdrawn
// because it was offline at its deadline without it (offline grace).
const StepWithdrawn = "declaration-withdrawn-offline"

var _ scheduler.OfflineWithdrawer = (*Enforcer)(nil)

// Delivery implements scheduler.OfflineWithdrawer from the Mac's
// declarative record. Without Records it reports the declaration fetched,
// so no declaration is ever withdrawn on a guess.
func (e *Enforcer) Delivery(ctx context.Context, st *scheduler.State) (scheduler.Delivery, error) {
	if e.records == nil {
		return scheduler.Delivery{Declared: true, Fetched: true}, nil
	}
	r, err := e.records.Record(ctx, st.DeviceID)
	if err != nil {
		return scheduler.Delivery{}, err
	}
	d := scheduler.Delivery{LastReport: r.Status.LastReport}
	enf := r.Enforcement
	if enf == nil {
		return d, nil
	}
	d.Declared = true
	d.Fetched = !enf.FetchedAt.IsZero() || enf.Confirmed || enf.Failure != nil
	for _, ds := range r.Status.Declarations {
		// The Mac reported an enforcement declaration (any version): it holds one.
		d.Fetched = d.Fetched || (ds.Kind == ddm.KindConfiguration && ds.Identifier == ddm.IDEnforcement)
	}
	return d, nil
}

// WithdrawOffline implements scheduler.OfflineWithdrawer: the enforcement
// declaration is removed (the Mac's next sync finds none) and inventory is
// queued behind the sync, so the Mac's first connection answers it and
// marks it back.
func (e *Enforcer) WithdrawOffline(ctx context.Context, st *scheduler.State, now time.Time) (scheduler.Action, error) {
	var act scheduler.Action
	if _, err := e.ddm.RemoveEnforcement(ctx, st.DeviceID); err != nil {
		return act, err
	}
	cmd, err := mdm.NewCommand("DeviceInformation", map[string]any{"Queries": mdm.InventoryQueries})
	if err != nil {
		return act, fmt.Errorf("build DeviceInformation: %w", err)
	}
	st.Step, st.StepAt, st.StepCommand, st.Awaiting = StepWithdrawn, now, cmd.UUID, cmd.RequestType
	act.Commands = []*mdm.Command{cmd}
	act.Events = []scheduler.Transition{{At: now, Kind: scheduler.EventStep, Step: StepWithdrawn, Target: st.Target,
		Reason: "enforcement declaration withdrawn: the Mac never fetched it, and its TargetLocalDateTime has come"}}
	return act, nil
}
