package scheduler_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// TestDeleteRingPlanReleasesHeldRings: removing a plan is audited, an
// unknown plan is not found, and the Macs the plan held get their notice
// at the next pass.
func TestDeleteRingPlanReleasesHeldRings(t *testing.T) {
	u := newUnit(t, utcAt(2026, 3, 2, 9, 0))
	u.ringFleet()
	u.putRings(scheduler.RingPlan{ID: "macos", Groups: []string{"pilot", "broad"}})
	u.pass()
	if st := u.state("broad-1"); !strings.Contains(st.Reason, "held: ring pilot") {
		t.Fatalf("broad-1 before the removal: %s (%s)", st.Phase, st.Reason)
	}
	if st := u.sched.RingStatuses()["macos"]; len(st) != 2 || st[0].Tally.Eligible != 2 || st[0].Tally.Compliant != 0 {
		t.Fatalf("ring statuses = %+v, want the pilot's tally of 2 eligible", st)
	}
	ctx := context.Background()
	if err := u.mgr.DeleteRingPlan(ctx, "admin@example.com", "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("delete an unknown plan = %v, want ErrNotFound", err)
	}
	if err := u.mgr.DeleteRingPlan(ctx, "", "macos"); !errors.Is(err, scheduler.ErrInvalid) {
		t.Fatalf("delete without an actor = %v, want ErrInvalid", err)
	}
	if err := u.mgr.DeleteRingPlan(ctx, "admin@example.com", "macos"); err != nil {
		t.Fatal(err)
	}
	if ps, err := u.mgr.RingPlans(ctx); err != nil || len(ps) != 0 {
		t.Fatalf("plans after the removal = %+v, %v", ps, err)
	}
	a, err := u.mgr.Audit(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	last := a[len(a)-1]
	if last.Action != "rings.remove" || last.Subject != "rings/macos" || last.Actor != "admin@example.com" || len(last.Before) == 0 {
		t.Fatalf("last audit entry = %+v", last)
	}
	u.pass()
	for _, id := range []string{"broad-1", "broad-2"} {
		if st := u.state(id); strings.Contains(st.Reason, "held") || st.Deadline.IsZero() {
			t.Fatalf("%s after the removal: %s deadline %v (%s)", id, st.Phase, st.Deadline, st.Reason)
		}
	}
	if st := u.state("broad-1"); st.Phase == softwareupdate.PhaseFailed {
		t.Fatalf("broad-1 failed: %s", st.Reason)
	}
}

// TestSetRingPlanRejectsAGroupInTwoPlans: a group belongs to one plan at
// most, so that it has one ring before it.
func TestSetRingPlanRejectsAGroupInTwoPlans(t *testing.T) {
	u := newUnit(t, utcAt(2026, 3, 2, 9, 0))
	u.ringFleet()
	ctx := context.Background()
	if _, err := u.mgr.CreateGroup(ctx, "admin", "late", "late"); err != nil {
		t.Fatal(err)
	}
	u.putRings(scheduler.RingPlan{ID: "macos", Groups: []string{"pilot", "broad"}})
	_, err := u.mgr.SetRingPlan(ctx, "admin", scheduler.RingPlan{ID: "other", Groups: []string{"late", "broad"}})
	if !errors.Is(err, scheduler.ErrInvalid) || !strings.Contains(err.Error(), "group broad is already in ring plan macos") {
		t.Fatalf("second plan with broad = %v, want ErrInvalid naming the plan", err)
	}
	// Replacing the plan itself with the same groups is fine.
	u.putRings(scheduler.RingPlan{ID: "macos", Groups: []string{"pilot", "late", "broad"}})
	if p := u.ringPlan("macos"); len(p.Groups) != 3 {
		t.Fatalf("replaced plan = %+v", p)
	}
}

// TestComplianceReportHeldRings: the report counts, per group, the Macs a
// ring gate holds (not a pending Mac with another reason).
func TestComplianceReportHeldRings(t *testing.T) {
	held := "held: ring pilot has not passed its health gate"
	in := []scheduler.ReportInput{
		{Device: reportDevice("a", "15.1"), GroupID: "broad", State: &scheduler.State{Phase: softwareupdate.PhasePending, Reason: held, Target: "15.2"}},
		{Device: reportDevice("b", "15.1"), GroupID: "broad", State: &scheduler.State{Phase: softwareupdate.PhasePending, Reason: held, Target: "15.2"}},
		{Device: reportDevice("c", "15.1"), GroupID: "late", State: &scheduler.State{Phase: softwareupdate.PhasePending, Reason: held, Target: "15.2"}},
		{Device: reportDevice("d", "15.1"), GroupID: "pilot", State: &scheduler.State{Phase: softwareupdate.PhasePending, Reason: "waiting for the first check-in", Target: "15.2"}},
		{Device: reportDevice("e", "15.1"), GroupID: "pilot", State: &scheduler.State{Phase: softwareupdate.PhaseNotify, Reason: held, Target: "15.2"}},
		{Device: reportDevice("f", "15.1"), GroupID: "pilot"},
	}
	rep := scheduler.BuildComplianceReport(reportNow, in, false)
	want := []scheduler.RingHold{{GroupID: "broad", Reason: held, Macs: 2}, {GroupID: "late", Reason: held, Macs: 1}}
	if fmt.Sprint(rep.HeldRings) != fmt.Sprint(want) {
		t.Fatalf("held rings = %+v, want %+v", rep.HeldRings, want)
	}
	if rep := scheduler.BuildComplianceReport(reportNow, nil, false); rep.HeldRings == nil {
		t.Fatal("held rings of an empty fleet is nil, want an empty list")
	}
}
