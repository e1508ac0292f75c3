package scheduler_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// ringFleet creates groups pilot and broad (15.2 by 2026-03-20 17:00 UTC)
// with two Macs each on 15.1.
func (u *unit) ringFleet() {
	u.t.Helper()
	ctx := context.Background()
	for _, g := range []string{"pilot", "broad"} {
		if _, err := u.mgr.CreateGroup(ctx, "admin", g, g); err != nil {
			u.t.Fatal(err)
		}
		if _, err := u.mgr.SetPolicy(ctx, "admin", g, softwareupdate.Policy{Mode: softwareupdate.ModeManual, MinimumVersion: "15.2",
			Date: "2026-03-20", TimeOfDay: "17:00", TimeZone: "UTC"}); err != nil {
			u.t.Fatal(err)
		}
		ids := []string{g + "-1", g + "-2"}
		for _, id := range ids {
			u.addMac(id, "15.1", "J413AP", true)
		}
		if err := u.mgr.AssignDevices(ctx, "admin", g, ids); err != nil {
			u.t.Fatal(err)
		}
	}
}

func (u *unit) putRings(p scheduler.RingPlan) {
	u.t.Helper()
	if _, err := u.mgr.SetRingPlan(context.Background(), "admin", p); err != nil {
		u.t.Fatal(err)
	}
}

func (u *unit) ringPlan(id string) scheduler.RingPlan {
	u.t.Helper()
	ps, err := u.store.RingPlans(context.Background())
	if err != nil {
		u.t.Fatal(err)
	}
	for _, p := range ps {
		if p.ID == id {
			return p
		}
	}
	u.t.Fatalf("no ring plan %s in %+v", id, ps)
	return scheduler.RingPlan{}
}

// TestRingGateOpensOnCompliance: the broad ring waits, never notified,
// while the pilot ring is below 90 % compliant; when both pilot Macs
// update, the gate opens at the next gate evaluation and the broad Macs
// get the full minimum notice (5 days) from then, not the policy's date,
// which has passed meanwhile.
func TestRingGateOpensOnCompliance(t *testing.T) {
	u := newUnit(t, utcAt(2026, 3, 2, 9, 0))
	u.ringFleet()
	u.putRings(scheduler.RingPlan{ID: "macos", Groups: []string{"pilot", "broad"}})
	u.pass()
	D := utcAt(2026, 3, 20, 17, 0)
	for _, id := range []string{"broad-1", "broad-2"} {
		if st := u.state(id); st.Phase != softwareupdate.PhasePending || !strings.Contains(st.Reason, "held: ring pilot") {
			t.Fatalf("%s: %s (%s), want pending held by ring pilot", id, st.Phase, st.Reason)
		}
	}
	if st := u.state("pilot-1"); strings.Contains(st.Reason, "held") || !st.Deadline.Equal(D) {
		t.Fatalf("pilot-1: %s deadline %v (%s)", st.Phase, st.Deadline, st.Reason)
	}
	if p := u.ringPlan("macos"); p.States[0].Started.IsZero() || !p.States[1].Started.IsZero() {
		t.Fatalf("ring starts = %+v, want pilot started and broad not", p.States)
	}

	// The pilot is notified; broad stays held past the policy's date.
	u.clk.Set(D.Add(-24 * time.Hour))
	u.pass()
	if st := u.state("pilot-1"); st.Phase != softwareupdate.PhaseNotify {
		t.Fatalf("pilot-1 at D-1d: %s (%s)", st.Phase, st.Reason)
	}
	u.clk.Set(D.Add(2 * time.Hour))
	u.pass()
	if st := u.state("broad-1"); st.Phase != softwareupdate.PhasePending || !strings.Contains(st.Reason, "held: ring pilot") || !st.Deadline.IsZero() {
		t.Fatalf("broad-1 after D: %s deadline %v (%s)", st.Phase, st.Deadline, st.Reason)
	}
	u.gateReason(t, "macos", "0 of 2 Macs compliant")

	// One of two pilot Macs compliant (50 %) keeps the gate shut.
	u.setInventory("pilot-1", mdm.Inventory{OSVersion: "15.2", SoftwareUpdateDeviceID: "J413AP", IsSupervised: true})
	u.pass()
	u.clk.Set(u.clk.Now().Add(scheduler.RingGateInterval))
	u.pass()
	if st := u.state("broad-1"); st.Phase != softwareupdate.PhasePending || !strings.Contains(st.Reason, "held: ring pilot") {
		t.Fatalf("broad-1 with the pilot half done: %s (%s)", st.Phase, st.Reason)
	}
	u.gateReason(t, "macos", "1 of 2 Macs compliant (< 90 %)")
	u.setInventory("pilot-2", mdm.Inventory{OSVersion: "15.2", SoftwareUpdateDeviceID: "J413AP", IsSupervised: true})
	u.pass()
	u.clk.Set(u.clk.Now().Add(scheduler.RingGateInterval))
	opened := u.clk.Now()
	u.pass()
	want := utcAt(2026, 3, 26, 17, 0) // the first 17:00 at least 5 days after opened (03-21 ~19:10)
	if opened.Add(5*24*time.Hour).After(want) || opened.Add(6*24*time.Hour).Before(want) {
		t.Fatalf("test setup: opened %v, want %v", opened, want)
	}
	for _, id := range []string{"broad-1", "broad-2"} {
		st := u.state(id)
		if strings.Contains(st.Reason, "held") || !st.Deadline.Equal(want) {
			t.Fatalf("%s after the gate opened: %s deadline %v (%s), want deadline %v", id, st.Phase, st.Deadline, st.Reason, want)
		}
	}
	if p := u.ringPlan("macos"); !p.States[1].Started.Equal(opened) {
		t.Fatalf("broad started %v, want %v", p.States[1].Started, opened)
	}
}

// TestRingGateFailuresHoldButNeverMoveANotifiedDeadline: a ring plan set
// after the broad Macs were notified holds none of them (their deadline
// stays the policy's); a broad Mac enrolled afterwards, never notified, is
// held while a pilot Mac has failed (50 % failed > 2 %) even though the
// other pilot Mac is compliant.
func TestRingGateFailuresHoldButNeverMoveANotifiedDeadline(t *testing.T) {
	ctx := t.Context()
	u := newUnit(t, utcAt(2026, 3, 2, 9, 0))
	u.ringFleet()
	D := utcAt(2026, 3, 20, 17, 0)
	u.pass()
	u.clk.Set(D.Add(-24 * time.Hour))
	u.pass()
	u.putRings(scheduler.RingPlan{ID: "macos", Groups: []string{"pilot", "broad"}})
	u.pass()
	for _, id := range []string{"broad-1", "broad-2"} {
		if st := u.state(id); st.Phase != softwareupdate.PhaseNotify || !st.Deadline.Equal(D) || strings.Contains(st.Reason, "held") {
			t.Fatalf("notified %s after the plan: %s deadline %v (%s), want notify by %v", id, st.Phase, st.Deadline, st.Reason, D)
		}
	}
	u.setInventory("pilot-1", mdm.Inventory{OSVersion: "15.2", SoftwareUpdateDeviceID: "J413AP", IsSupervised: true})
	st := u.state("pilot-2")
	st.Fail("InstallFailed: not enough space", u.clk.Now(), time.Time{})
	if err := u.store.Commit(ctx, []scheduler.Commit{{State: st}}, u.clk.Now()); err != nil {
		t.Fatal(err)
	}
	u.sched.Touch("pilot-2")
	u.pass()
	if st := u.state("pilot-2"); st.Phase != softwareupdate.PhaseFailed {
		t.Fatalf("pilot-2: %s (%s), want failed", st.Phase, st.Reason)
	}
	u.addMac("broad-3", "15.1", "J413AP", true)
	if err := u.mgr.AssignDevices(ctx, "admin", "broad", []string{"broad-3"}); err != nil {
		t.Fatal(err)
	}
	u.clk.Set(u.clk.Now().Add(scheduler.RingGateInterval))
	u.pass()
	if st := u.state("broad-3"); st.Phase != softwareupdate.PhasePending || !strings.Contains(st.Reason, "held: ring pilot") {
		t.Fatalf("new broad-3: %s (%s), want held by the pilot's failures", st.Phase, st.Reason)
	}
	u.gateReason(t, "macos", "1 of 2 Macs failed (> 2 %)")
	for _, id := range []string{"broad-1", "broad-2"} {
		if st := u.state(id); st.Phase != softwareupdate.PhaseNotify || !st.Deadline.Equal(D) {
			t.Fatalf("notified %s moved: %s deadline %v (%s)", id, st.Phase, st.Deadline, st.Reason)
		}
	}
}

// gateReason checks the reason of the first ring's gate of plan.
func (u *unit) gateReason(t *testing.T, plan, want string) {
	t.Helper()
	st := u.sched.RingStatuses()[plan]
	if len(st) < 2 || st[0].Gate.Open || !strings.Contains(st[0].Gate.Reason, want) || st[1].MayNotify {
		t.Fatalf("ring statuses of %s = %+v, want the first gate shut: %q", plan, st, want)
	}
}

// TestRingGateMaxWaitThenPromote: a pilot that never updates holds the
// broad ring; after the gate's maximum wait the gate asks for a promotion
// by hand, and a pause of the broad group during the gate changes nothing
// for its never-notified Macs. The promotion (another replica's write:
// no Reevaluate here) opens the gate at the next pass, and the broad Macs
// get full minimum notice from then.
func TestRingGateMaxWaitThenPromote(t *testing.T) {
	ctx := t.Context()
	u := newUnit(t, utcAt(2026, 3, 2, 9, 0))
	u.ringFleet()
	wait := 48
	u.putRings(scheduler.RingPlan{ID: "macos", Groups: []string{"pilot", "broad"}, Gate: scheduler.RingGate{MaxWaitHours: &wait}})
	u.pass()
	if _, err := u.mgr.Pause(ctx, "oncall@example.com", "broad", "waiting on the pilot"); err != nil {
		t.Fatal(err)
	}
	u.clk.Set(utcAt(2026, 3, 4, 9, 0))
	u.pass()
	st := u.sched.RingStatuses()["macos"]
	if len(st) != 2 || !st[0].Gate.NeedsPromotion || st[1].MayNotify || !strings.Contains(st[0].Gate.Reason, "promote by hand") {
		t.Fatalf("after the maximum wait: %+v", st)
	}
	if err := u.mgr.Resume(ctx, "oncall@example.com", "broad"); err != nil {
		t.Fatal(err)
	}
	u.pass()
	for _, id := range []string{"broad-1", "broad-2"} {
		if st := u.state(id); st.Phase != softwareupdate.PhasePending || !strings.Contains(st.Reason, "held: ring pilot") {
			t.Fatalf("%s after pause and resume during the gate: %s (%s)", id, st.Phase, st.Reason)
		}
	}
	u.clk.Set(utcAt(2026, 3, 18, 10, 0))
	other := scheduler.NewManager(u.store, testCatalog(t), u.clk, nil) // another replica
	if _, err := other.PromoteRing(ctx, "admin@example.com", "macos", "broad"); !errors.Is(err, scheduler.ErrInvalid) {
		t.Fatalf("promote the last ring = %v, want ErrInvalid", err)
	}
	if _, err := other.PromoteRing(ctx, "admin@example.com", "nope", "pilot"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("promote in an unknown plan = %v, want ErrNotFound", err)
	}
	if _, err := other.PromoteRing(ctx, "admin@example.com", "macos", "pilot"); err != nil {
		t.Fatal(err)
	}
	if p := u.ringPlan("macos"); p.States[0].Promoted == nil || p.States[0].Promoted.Actor != "admin@example.com" {
		t.Fatalf("promotion not stored: %+v", p.States)
	}
	if a, err := u.store.Audit(ctx, 0, 1000); err != nil || a[len(a)-1].Action != "rings.promote" {
		t.Fatalf("audit = %+v, %v", a, err)
	}
	u.pass()
	want := utcAt(2026, 3, 23, 17, 0) // 03-18 10:00 + 5 days, at 17:00
	for _, id := range []string{"broad-1", "broad-2"} {
		if st := u.state(id); strings.Contains(st.Reason, "held") || !st.Deadline.Equal(want) {
			t.Fatalf("%s after the promotion: %s deadline %v (%s), want %v", id, st.Phase, st.Deadline, st.Reason, want)
		}
	}
	if st := u.state("pilot-1"); !st.Deadline.Equal(utcAt(2026, 3, 20, 17, 0)) {
		t.Fatalf("pilot-1 deadline moved: %v", st.Deadline)
	}
}
