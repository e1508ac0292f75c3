package scheduler_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/declarative"
	"github.com/sundial-mdm/sundial/softwareupdate/legacy"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// history returns a device's whole history.
func (u *unit) history(id string) []scheduler.Transition {
	u.t.Helper()
	h, err := u.store.History(context.Background(), id, 0)
	if err != nil {
		u.t.Fatal(err)
	}
	return h
}

func hasStep(h []scheduler.Transition, step string) bool {
	for _, e := range h {
		if e.Kind == scheduler.EventStep && e.Step == step {
			return true
		}
	}
	return false
}

// TestPauseOneSecondBeforeTheForcedInstall: a pause stored one second
// before the forced install (D+30 min: the legacy InstallForceRestart and
// the declaration's TargetLocalDateTime), by another replica's admin API
// (no Reevaluate reaches this scheduler), holds both paths at the next
// pass: no install-force is queued, the enforcement declaration is
// withdrawn, and an unpaused group still gets its forced install. Resuming
// gives the held Macs fresh minimum notice; they are forced only after it.
func TestPauseOneSecondBeforeTheForcedInstall(t *testing.T) {
	ctx := t.Context()
	u := newUnit(t, utcAt(2026, 3, 2, 9, 0))
	f := &recordingDDM{}
	u.useStore(u.store, scheduler.WithEnforcer(softwareupdate.PathDeclarative, declarative.New(f, agentZones{}, nil)))
	D := utcAt(2026, 3, 20, 17, 0)
	for group, path := range map[string]softwareupdate.EnforcementPath{
		"legacy": softwareupdate.PathLegacy, "ddm": softwareupdate.PathDeclarative, "control": softwareupdate.PathLegacy,
	} {
		if _, err := u.mgr.CreateGroup(ctx, "admin", group, group); err != nil {
			t.Fatal(err)
		}
		if _, err := u.mgr.SetPolicy(ctx, "admin", group, softwareupdate.Policy{Mode: softwareupdate.ModeManual, MinimumVersion: "15.2",
			Date: "2026-03-20", TimeOfDay: "17:00", TimeZone: "UTC", Path: path}); err != nil {
			t.Fatal(err)
		}
		u.addMac(group+"-mac", "15.1", "J413AP", true)
		if err := u.mgr.AssignDevices(ctx, "admin", group, []string{group + "-mac"}); err != nil {
			t.Fatal(err)
		}
	}
	u.pass()
	u.clk.Set(D.Add(-24 * time.Hour))
	u.pass()
	for _, id := range []string{"legacy-mac", "ddm-mac", "control-mac"} {
		if st := u.state(id); st.Phase != softwareupdate.PhaseNotify || !st.Deadline.Equal(D) {
			t.Fatalf("%s before the pause: %s deadline %v (%s)", id, st.Phase, st.Deadline, st.Reason)
		}
	}
	f.payload(t, "ddm-mac") // declared

	forceAt := D.Add(softwareupdate.CountdownWindow)
	u.clk.Set(forceAt.Add(-time.Second))
	u.pass()
	other := scheduler.NewManager(u.store, testCatalog(t), u.clk, nil) // another replica
	for _, g := range []string{"legacy", "ddm"} {
		if _, err := other.Pause(ctx, "oncall@example.com", g, "boot loops reported on 15.2"); err != nil {
			t.Fatal(err)
		}
	}
	u.pass()
	for _, id := range []string{"legacy-mac", "ddm-mac"} {
		st := u.state(id)
		if st.Phase != softwareupdate.PhasePaused || !strings.Contains(st.Reason, "boot loops") || !strings.Contains(st.Reason, "oncall@example.com") {
			t.Fatalf("%s after the pause: %s (%s)", id, st.Phase, st.Reason)
		}
	}
	if _, ok := f.last["ddm-mac"]; ok {
		t.Fatal("ddm-mac kept its enforcement declaration while paused")
	}
	if !hasStep(u.history("ddm-mac"), declarative.StepRemoved) {
		t.Errorf("ddm-mac history does not record the withdrawal: %+v", u.history("ddm-mac"))
	}

	u.clk.Set(forceAt)
	u.pass()
	if st := u.state("control-mac"); st.Phase != softwareupdate.PhaseEnforce || !hasStep(u.history("control-mac"), legacy.StepForce) {
		t.Fatalf("control-mac (not paused) was not forced: %s %+v", st.Phase, u.history("control-mac"))
	}
	u.clk.Set(D.Add(48 * time.Hour))
	u.pass()
	if hasStep(u.history("legacy-mac"), legacy.StepForce) || u.state("legacy-mac").Attempts != 0 {
		t.Fatalf("legacy-mac was forced while paused: %+v", u.history("legacy-mac"))
	}
	if _, ok := f.last["ddm-mac"]; ok {
		t.Fatal("ddm-mac was declared again while paused")
	}
	if ps, _ := u.mgr.Pauses(ctx); len(ps) != 2 {
		t.Fatalf("pauses = %+v", ps)
	}

	// Resume from the other replica: fresh minimum notice from now.
	resumed := u.clk.Now()
	for _, g := range []string{"legacy", "ddm"} {
		if err := other.Resume(ctx, "oncall@example.com", g); err != nil {
			t.Fatal(err)
		}
	}
	u.pass()
	notice := time.Duration(softwareupdate.DefaultMinimumNoticeDays) * 24 * time.Hour
	var newD time.Time
	for _, id := range []string{"legacy-mac", "ddm-mac"} {
		st := u.state(id)
		if st.Phase == softwareupdate.PhasePaused || st.Deadline.Before(resumed.Add(notice)) || !st.FirstNonCompliant.Equal(resumed) {
			t.Fatalf("%s after resume: %s deadline %v first %v; want fresh notice from %v", id, st.Phase, st.Deadline, st.FirstNonCompliant, resumed)
		}
		newD = st.Deadline
	}
	if p := f.payload(t, "ddm-mac"); p.TargetLocalDateTime != newD.Add(softwareupdate.CountdownWindow).Format("2006-01-02T15:04:05") {
		t.Errorf("ddm-mac declared again with TargetLocalDateTime %s, want the new deadline %v + 30 min", p.TargetLocalDateTime, newD)
	}
	u.clk.Set(newD.Add(softwareupdate.CountdownWindow))
	u.pass()
	if !hasStep(u.history("legacy-mac"), legacy.StepForce) {
		t.Fatalf("legacy-mac not forced after its fresh notice: %+v", u.history("legacy-mac"))
	}
	audit, err := u.mgr.Audit(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, a := range audit {
		if strings.HasPrefix(a.Action, "rollout.") {
			actions = append(actions, a.Action+" "+a.Subject)
		}
	}
	if want := "rollout.pause group/legacy,rollout.pause group/ddm,rollout.resume group/legacy,rollout.resume group/ddm"; strings.Join(actions, ",") != want {
		t.Errorf("audit = %v, want %s", actions, want)
	}
}

// TestFleetPauseAndBadInput: a fleet-wide pause holds every group; bad
// input is refused and changes nothing.
func TestFleetPauseAndBadInput(t *testing.T) {
	ctx := t.Context()
	u := newUnit(t, utcAt(2026, 3, 2, 9, 0))
	u.twoRings(2)
	u.addMac("a", "15.1", "J413AP", true)
	u.addMac("b", "15.1", "J413AP", true)
	if err := u.mgr.AssignDevices(ctx, "admin", "late", []string{"b"}); err != nil {
		t.Fatal(err)
	}
	u.pass() // first seen non-compliant long before the deadlines
	for _, bad := range []struct{ actor, group, reason string }{
		{"admin", scheduler.FleetPause, ""},
		{"admin", scheduler.FleetPause, strings.Repeat("x", scheduler.MaxPauseReason+1)},
		{"", scheduler.FleetPause, "why"},
		{"admin", "Bad Group", "why"},
		{"admin", "missing", "why"},
	} {
		if _, err := u.mgr.Pause(ctx, bad.actor, bad.group, bad.reason); err == nil {
			t.Errorf("Pause(%q, %q, %q) accepted", bad.actor, bad.group, bad.reason)
		}
	}
	if ps, _ := u.mgr.Pauses(ctx); len(ps) != 0 {
		t.Fatalf("refused pauses stored: %+v", ps)
	}
	if err := u.mgr.Resume(ctx, "admin", scheduler.FleetPause); err == nil {
		t.Error("resume without a pause accepted")
	}
	if _, err := u.mgr.Pause(ctx, "admin", scheduler.FleetPause, "freeze for the audit"); err != nil {
		t.Fatal(err)
	}
	u.clk.Set(utcAt(2026, 3, 25, 0, 0)) // past both rings' deadlines
	u.pass()
	for _, id := range []string{"a", "b"} {
		if st := u.state(id); st.Phase != softwareupdate.PhasePaused || !strings.Contains(st.Reason, "the fleet") {
			t.Errorf("%s = %s (%s), want paused by the fleet pause", id, st.Phase, st.Reason)
		}
		for _, c := range u.commands(id) {
			if c == "ScheduleOSUpdate" {
				t.Errorf("%s sent ScheduleOSUpdate while paused", id)
			}
		}
	}
	if rep := u.report(); rep.ByPhase[softwareupdate.PhasePaused] != 2 {
		t.Errorf("report by phase = %v, want 2 paused", rep.ByPhase)
	}
}
