// Package declarative is the declarative enforcement path: it turns the
// scheduler's phases into a softwareupdate.enforcement.specific declaration
// (through mdm/ddm) and feeds the device's status reports back to the
// scheduler.
//
// Time zone: TargetLocalDateTime is the personal deadline plus the 30-minute
// countdown written in the Mac's wall-clock time. The zone is the one the
// agent reported for the Mac; without it, the zone the scheduler computed
// the deadline in (softwareupdate.DeadlineLocation): the policy's zone, or
// for a "device-local" policy its fallback zone. A device-local deadline of
// 12:00 on day X is thus written 12:30 on day X, which the Mac reads in its
// own zone.
package declarative

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/ddm"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// DDM sets and removes a device's enforcement declaration.
type DDM interface {
	SetEnforcement(ctx context.Context, id string, e ddm.Enforcement) (bool, error)
	RemoveEnforcement(ctx context.Context, id string) (bool, error)
}

// Zones tells the Mac's time zone as the agent reported it ("" if unknown).
type Zones interface {
	DeviceZone(ctx context.Context, id string) string
}

// Countdown is how long after the deadline the OS forces the install.
const Countdown = 30 * time.Minute

// Step names recorded in the scheduler's state.
const (
	StepDeclared = "declaration"
	StepRemoved  = "declaration-removed"
)

// Enforcer implements scheduler.Enforcer for the declarative path.
type Enforcer struct {
	ddm     DDM
	records Records // nil: the offline grace never withdraws (offline.go)
	zones   Zones
	log     *slog.Logger
}

// New returns the declarative enforcer.
func New(d DDM, zones Zones, log *slog.Logger) *Enforcer {
	if d == nil || zones == nil {
		panic("declarative.New: nil dependency")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	records, _ := d.(Records)
	return &Enforcer{ddm: d, records: records, zones: zones, log: log}
}

var (
	_ scheduler.Enforcer = (*Enforcer)(nil)
	_ scheduler.Retirer  = (*Enforcer)(nil)
)

// Step implements scheduler.Enforcer. From notify on, the device carries the
// enforcement declaration (re-issued whenever the target, the deadline or
// the zone changes: the DDM layer writes it only when its content changes);
// a compliant device has it removed.
func (e *Enforcer) Step(ctx context.Context, st *scheduler.State, in scheduler.Input) (scheduler.Action, error) {
	var act scheduler.Action
	switch in.Decision.Phase {
	case softwareupdate.PhaseNotify, softwareupdate.PhaseCountdown, softwareupdate.PhaseEnforce:
		var details string
		var policyLoc *time.Location
		if in.Policy != nil {
			details, policyLoc = in.Policy.DetailsURL, softwareupdate.DeadlineLocation(*in.Policy, nil)
		}
		loc := ddm.DeviceZone(e.zones.DeviceZone(ctx, st.DeviceID), policyLoc)
		enf := ddm.Enforcement{
			TargetOSVersion: st.Target,
			Deadline:        in.Decision.Deadline,
			Location:        loc,
			DetailsURL:      details,
		}
		changed, err := e.ddm.SetEnforcement(ctx, st.DeviceID, enf)
		if err != nil {
			return act, err
		}
		if changed || st.Step != StepDeclared {
			st.Step, st.StepAt, st.Awaiting = StepDeclared, in.Now, ""
			act.Events = append(act.Events, scheduler.Transition{
				At: in.Now, Kind: scheduler.EventStep, Step: StepDeclared, Target: st.Target, Deadline: in.Decision.Deadline,
				Reason: "enforcement declaration: install " + st.Target + " by " +
					in.Decision.Deadline.Add(Countdown).In(loc).Format("2006-01-02T15:04:05") + " " + loc.String() + " (Mac local time)",
			})
		}
	case softwareupdate.PhaseCompliant, softwareupdate.PhaseUnmanaged, softwareupdate.PhaseExempt:
		removed, err := e.ddm.RemoveEnforcement(ctx, st.DeviceID)
		if err != nil {
			return act, err
		}
		if removed {
			st.Step, st.StepAt = StepRemoved, in.Now
			act.Events = append(act.Events, scheduler.Transition{At: in.Now, Kind: scheduler.EventStep, Step: StepRemoved,
				Reason: "enforcement declaration removed: " + string(in.Decision.Phase)})
		}
	}
	return act, nil
}

// Retire implements scheduler.Retirer: a Mac leaving the declarative path
// has its enforcement declaration removed, since macOS ignores legacy update
// commands while one is active.
func (e *Enforcer) Retire(ctx context.Context, st *scheduler.State, now time.Time) ([]scheduler.Transition, error) {
	removed, err := e.ddm.RemoveEnforcement(ctx, st.DeviceID)
	if err != nil || !removed {
		return nil, err
	}
	return []scheduler.Transition{{At: now, Kind: scheduler.EventStep, Step: StepRemoved,
		Reason: "enforcement declaration removed: the Mac left the declarative path"}}, nil
}

// HandleResult implements scheduler.Enforcer: the DeclarativeManagement
// command's acknowledgement carries nothing to fold in; status reports
// arrive through Observer. An answer to the inventory WithdrawOffline
// queued (NotNow too: the Mac is there) ends the wait for the Mac.
func (e *Enforcer) HandleResult(ctx context.Context, st *scheduler.State, res scheduler.Result, now time.Time) ([]scheduler.Transition, error) {
	if st.Awaiting != "" && res.CommandUUID != "" && res.CommandUUID == st.StepCommand {
		st.Awaiting = ""
	}
	return nil, nil
}

// Scheduler re-evaluates devices and takes in what their status reports
// say (scheduler.Scheduler).
type Scheduler interface {
	Touch(ids ...string)
	ReportStatus(ctx context.Context, id string, ds scheduler.DeviceStatus) error
}

// Enqueuer queues MDM commands.
type Enqueuer interface {
	Enqueue(ctx context.Context, ids []string, cmd *mdm.Command) error
}

// Observer passes the device's status reports to the scheduler: a reported
// OS version change or a failed enforcement asks the Mac for fresh
// inventory (compliance is confirmed from DeviceInformation); a refused
// declaration or a failed install becomes the Mac's failure with Apple's
// reason, and clears when the Mac reports it recovered.
type Observer struct {
	Sched Scheduler
	Enq   Enqueuer
	Log   *slog.Logger
}

// StatusChanged implements ddm.Observer.
func (o Observer) StatusChanged(ctx context.Context, id string, u ddm.StatusUpdate) {
	failed := u.InstallFailed || u.State == ddm.StateFailed
	if u.Compliant || failed {
		cmd, err := mdm.NewCommand("DeviceInformation", map[string]any{"Queries": mdm.InventoryQueries})
		if err == nil {
			err = o.Enq.Enqueue(ctx, []string{id}, cmd)
		}
		if err != nil && o.Log != nil {
			o.Log.Error("inventory refresh after status report failed", "enrollment_id", id, "err", err)
		}
	}
	if ds := statusOf(u); failed || ds.DeclarationApplied || ds.Installing || ds.Compliant {
		if err := o.Sched.ReportStatus(ctx, id, ds); err != nil && o.Log != nil {
			o.Log.Error("status report not applied to the update state", "enrollment_id", id, "err", err)
		}
		return
	}
	o.Sched.Touch(id)
}

// maxReasons bounds the reasons quoted in one failure.
const maxReasons = 4

// statusOf reads a status update as the scheduler wants it.
func statusOf(u ddm.StatusUpdate) scheduler.DeviceStatus {
	ds := scheduler.DeviceStatus{
		DeclarationApplied: u.State == ddm.StateConfirmed,
		Compliant:          u.Compliant,
	}
	switch u.Current.InstallState {
	case ddm.InstallDownloading, ddm.InstallPrepared, ddm.InstallInstalling:
		ds.Installing = !u.InstallFailed
	}
	if u.State == ddm.StateFailed {
		var parts []string
		for _, r := range u.Reasons {
			if len(parts) == maxReasons {
				parts = append(parts, fmt.Sprintf("and %d more", len(u.Reasons)-maxReasons))
				break
			}
			p := r.Code
			if r.Description != "" {
				p += ": " + r.Description
			}
			parts = append(parts, p)
		}
		ds.DeclarationFailure = "enforcement declaration rejected by the Mac"
		if len(parts) > 0 {
			ds.DeclarationFailure += ": " + strings.Join(parts, "; ")
		} else {
			ds.DeclarationFailure += " (inactive, no reason given)"
		}
	}
	if u.InstallFailed {
		fr := u.Current.FailureReason
		ds.InstallFailure = "software update failed"
		if fr.Reason != "" {
			ds.InstallFailure += ": " + fr.Reason
		}
		if fr.Count > 0 {
			ds.InstallFailure += fmt.Sprintf(" (%d failed attempts)", fr.Count)
		}
		// Apple silicon Macs install MDM-enforced updates with the bootstrap
		// token; the scheduler flags the Mac only if it has none escrowed.
		ds.RequiresBootstrap = true
	}
	return ds
}
