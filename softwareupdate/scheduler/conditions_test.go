package scheduler_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/ddm"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/declarative"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// report builds the compliance report of u's fleet and checks that its
// counts agree with the per-device rows.
func (u *unit) report() *scheduler.ComplianceReport {
	u.t.Helper()
	rep, err := scheduler.NewReporter(u.store, u.store, testCatalog(u.t), u.clk).Compliance(context.Background(), true)
	if err != nil {
		u.t.Fatal(err)
	}
	byStatus := map[string]int{}
	for _, r := range rep.Rows {
		byStatus[r.Status]++
	}
	total := 0
	for k, n := range rep.ByStatus {
		total += n
		if byStatus[k] != n {
			u.t.Errorf("report counts %d %s, rows %d", n, k, byStatus[k])
		}
	}
	if total != rep.Devices {
		u.t.Errorf("by_status sums to %d of %d devices", total, rep.Devices)
	}
	return rep
}

func (u *unit) commands(id string) []string {
	u.t.Helper()
	recs, err := u.store.Commands(context.Background(), id)
	if err != nil {
		u.t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, r.RequestType)
	}
	return out
}

func (u *unit) setInventory(id string, inv mdm.Inventory) {
	u.t.Helper()
	if err := u.store.UpdateInventory(context.Background(), id, &inv, u.clk.Now()); err != nil {
		u.t.Fatal(err)
	}
	u.sched.Touch(id)
}

// TestUnsupervisedIsIneligible: an unsupervised Mac is "ineligible: not
// supervised", never failed, is sent no update command, keeps its deadline
// (its user still gets the agent's prompts) and is counted apart in the
// report. On main it was failed ("not supervised") and listed as a failure.
func TestUnsupervisedIsIneligible(t *testing.T) {
	u := newUnit(t, utcAt(2026, 3, 2, 9, 0))
	u.twoRings(3)
	u.addMac("sup", "15.1", "J413AP", true)
	u.addMac("byod", "15.1", "J413AP", false)
	u.pass()
	for _, at := range []time.Time{utcAt(2026, 3, 16, 12, 0), utcAt(2026, 3, 20, 19, 0)} {
		u.clk.Set(at)
		u.pass()
		st := u.state("byod")
		if st.Phase != softwareupdate.PhaseIneligible || st.Reason != "ineligible: not supervised" || st.Failure != "" {
			t.Fatalf("%v: byod = %s %q failure %q", at, st.Phase, st.Reason, st.Failure)
		}
		if !st.Deadline.Equal(utcAt(2026, 3, 20, 17, 0)) {
			t.Errorf("byod deadline = %v, want the group's (for the agent's prompts)", st.Deadline)
		}
	}
	if cmds := u.commands("byod"); len(cmds) != 0 {
		t.Errorf("byod was sent %v", cmds)
	}
	rep := u.report()
	if rep.ByPhase[softwareupdate.PhaseIneligible] != 1 || rep.ByPhase[softwareupdate.PhaseFailed] != 0 || len(rep.Failures) != 0 {
		t.Errorf("by phase %v, failures %+v", rep.ByPhase, rep.Failures)
	}
	if len(rep.Ineligible) != 1 || rep.Ineligible[0].DeviceID != "byod" || !strings.Contains(rep.Ineligible[0].Reason, "not supervised") {
		t.Errorf("ineligible = %+v", rep.Ineligible)
	}
	for _, d := range rep.PastDeadline {
		if d.DeviceID == "byod" {
			t.Errorf("an ineligible Mac is listed past its deadline: %+v", d)
		}
	}
	// Supervised later (re-enrolled through ADE): it becomes eligible.
	u.setInventory("byod", mdm.Inventory{OSVersion: "15.1", SoftwareUpdateDeviceID: "J413AP", IsSupervised: true})
	u.pass()
	if st := u.state("byod"); st.Phase != softwareupdate.PhaseEnforce {
		t.Errorf("byod supervised = %s", st.Phase)
	}
}

const availableUpdates = `<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>AvailableOSUpdates</key><array><dict>
<key>ProductKey</key><string>MSU_UPDATE_24C101_patch_15.2</string>
<key>Version</key><string>15.2</string><key>Build</key><string>24C101</string>
<key>RequiresBootstrapToken</key><true/>
</dict></array>
<key>CommandUUID</key><string>%s</string>
<key>Status</key><string>Acknowledged</string>
<key>UDID</key><string>as</string>
</dict></plist>`

// TestNeedsBootstrapToken: an Apple silicon Mac whose update needs a
// bootstrap token (RequiresBootstrapToken in AvailableOSUpdates) and has
// none escrowed is flagged before its deadline, in the state, the history
// and the report; escrowing a token clears the flag.
func TestNeedsBootstrapToken(t *testing.T) {
	ctx := t.Context()
	u := newUnit(t, utcAt(2026, 3, 2, 9, 0))
	u.twoRings(3)
	u.addMac("as", "15.1", "J413AP", true)
	u.setInventory("as", mdm.Inventory{OSVersion: "15.1", SoftwareUpdateDeviceID: "J413AP", IsSupervised: true, IsAppleSilicon: true})
	u.pass()
	// The pending phase scans first and lists the updates once the scan
	// had time to run (the legacy enforcer's ScanWait, 10 minutes).
	st := u.state("as")
	if st.Phase != softwareupdate.PhasePending || st.Awaiting != "ScheduleOSUpdateScan" {
		t.Fatalf("as = %s awaiting %q", st.Phase, st.Awaiting)
	}
	if err := u.sched.HandleResult(ctx, "as", "ScheduleOSUpdateScan", &mdm.Report{Status: mdm.Acknowledged, CommandUUID: st.StepCommand}, nil); err != nil {
		t.Fatal(err)
	}
	u.clk.Advance(10 * time.Minute)
	u.pass()
	st = u.state("as")
	if st.Phase != softwareupdate.PhasePending || st.Awaiting != "AvailableOSUpdates" {
		t.Fatalf("as after the scan = %s awaiting %q", st.Phase, st.Awaiting)
	}
	raw := []byte(strings.Replace(availableUpdates, "%s", st.StepCommand, 1))
	if err := u.sched.HandleResult(ctx, "as", "AvailableOSUpdates", &mdm.Report{Status: mdm.Acknowledged, CommandUUID: st.StepCommand}, raw); err != nil {
		t.Fatal(err)
	}
	st = u.state("as")
	if !scheduler.NeedsBootstrapToken(st) || scheduler.Status(st) != scheduler.StatusNeedsBootstrapToken || st.Phase != softwareupdate.PhasePending {
		t.Fatalf("as = %s, status %s, requires %v", st.Phase, scheduler.Status(st), st.RequiresBootstrap)
	}
	rep := u.report()
	if len(rep.NeedsBootstrapToken) != 1 || rep.ByStatus[scheduler.StatusNeedsBootstrapToken] != 1 {
		t.Errorf("report: %+v, by status %v", rep.NeedsBootstrapToken, rep.ByStatus)
	}
	dr, err := u.mgr.Device(ctx, "as", 0)
	if err != nil {
		t.Fatal(err)
	}
	if dr.Status != scheduler.StatusNeedsBootstrapToken || !strings.Contains(dr.History[len(dr.History)-1].Reason, "needs bootstrap token") {
		t.Errorf("device report: status %q, history %+v", dr.Status, dr.History)
	}
	// The Mac escrows its token: no longer flagged.
	if err := u.store.SetBootstrapToken(ctx, "as", []byte("sealed-token"), u.clk.Now()); err != nil {
		t.Fatal(err)
	}
	u.sched.Touch("as")
	u.pass()
	if st := u.state("as"); scheduler.NeedsBootstrapToken(st) {
		t.Errorf("still flagged after escrow: %+v", st.Facts)
	}
}

// TestDeferringAfterTheDeadline: past its deadline, a Mac that answers
// NotNow again and again to the forced install is shown as deferring, with
// the count and since when, in its state, the device report and the
// compliance report; an answer other than NotNow ends it. On main nothing
// recorded the NotNow answers: the Mac just stayed in enforce.
func TestDeferringAfterTheDeadline(t *testing.T) {
	ctx := t.Context()
	u := newUnit(t, utcAt(2026, 3, 2, 9, 0))
	u.twoRings(3)
	u.addMac("mac", "15.1", "J413AP", true)
	u.pass()
	u.clk.Set(utcAt(2026, 3, 20, 18, 0)) // an hour past the deadline
	u.pass()
	st := u.state("mac")
	if st.Phase != softwareupdate.PhaseEnforce || st.Awaiting != "ScheduleOSUpdate" {
		t.Fatalf("mac = %s awaiting %q", st.Phase, st.Awaiting)
	}
	force := st.StepCommand
	first := u.clk.Now()
	for i := range 3 {
		u.clk.Set(first.Add(time.Duration(i) * 6 * time.Hour))
		if err := u.sched.HandleResult(ctx, "mac", "ScheduleOSUpdate", &mdm.Report{Status: mdm.NotNow, CommandUUID: force}, nil); err != nil {
			t.Fatal(err)
		}
	}
	st = u.state("mac")
	if scheduler.Status(st) != scheduler.StatusDeferring || st.NotNowCount != 3 || !st.NotNowSince.Equal(first) {
		t.Fatalf("mac: status %s, %d NotNow since %v", scheduler.Status(st), st.NotNowCount, st.NotNowSince)
	}
	rep := u.report()
	if len(rep.Deferring) != 1 || rep.Deferring[0].NotNowCount != 3 || !rep.Deferring[0].NotNowSince.Equal(first) || rep.ByStatus[scheduler.StatusDeferring] != 1 {
		t.Errorf("report deferring = %+v, by status %v", rep.Deferring, rep.ByStatus)
	}
	if dr, err := u.mgr.Device(ctx, "mac", 1); err != nil || dr.Status != scheduler.StatusDeferring {
		t.Errorf("device report status = %v, %v", dr, err)
	}
	// The Mac finally takes the command: no longer deferring.
	if err := u.sched.HandleResult(ctx, "mac", "ScheduleOSUpdate", &mdm.Report{Status: mdm.Error, CommandUUID: force,
		ErrorChain: []mdm.ErrorChainItem{{ErrorCode: 12345, ErrorDomain: "test", LocalizedDescription: "install failed"}}}, nil); err != nil {
		t.Fatal(err)
	}
	if st := u.state("mac"); scheduler.Deferring(st) || st.NotNowCount != 0 {
		t.Errorf("after an answer: status %s, NotNow %d", scheduler.Status(st), st.NotNowCount)
	}
}

// queue records the commands the declarative Observer queues.
type queue struct {
	mu   sync.Mutex
	cmds []string
}

func (q *queue) Enqueue(_ context.Context, ids []string, cmd *mdm.Command) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.cmds = append(q.cmds, cmd.RequestType)
	return nil
}

// TestDeclarativeFailuresAreSurfaced: a refused enforcement declaration and
// a failed install become the Mac's failure with Apple's reason (phase
// failed, in history and the report) and clear when the Mac reports it
// recovered. On main they were logged and dropped.
func TestDeclarativeFailuresAreSurfaced(t *testing.T) {
	ctx := t.Context()
	u := newUnit(t, utcAt(2026, 3, 2, 9, 0))
	f := &recordingDDM{}
	u.useStore(u.store, scheduler.WithEnforcer(softwareupdate.PathDeclarative, declarative.New(f, agentZones{}, nil)))
	u.twoRings(3)
	u.addMac("mac", "15.1", "J413AP", true)
	u.pass()
	u.clk.Set(utcAt(2026, 3, 16, 12, 0))
	u.pass()
	if st := u.state("mac"); st.Phase != softwareupdate.PhaseNotify || st.Step != declarative.StepDeclared {
		t.Fatalf("mac = %s %q", st.Phase, st.Step)
	}
	obs := declarative.Observer{Sched: u.sched, Enq: &queue{}}
	check := func(wantPhase softwareupdate.Phase, wantFailure string) {
		t.Helper()
		st := u.state("mac")
		if st.Phase != wantPhase || !strings.Contains(st.Failure, wantFailure) || (wantFailure == "") != (st.Failure == "") {
			t.Fatalf("mac = %s failure %q, want %s %q", st.Phase, st.Failure, wantPhase, wantFailure)
		}
	}
	reason := ddm.Reason{Code: "Error.ConfigurationCannotBeApplied", Description: "TargetOSVersion is not a valid version"}
	obs.StatusChanged(ctx, "mac", ddm.StatusUpdate{State: ddm.StateFailed, Reasons: []ddm.Reason{reason}})
	check(softwareupdate.PhaseFailed, "Error.ConfigurationCannotBeApplied: TargetOSVersion is not a valid version")
	rep := u.report()
	if len(rep.Failures) != 1 || !strings.Contains(rep.Failures[0].Reason, "rejected by the Mac") {
		t.Errorf("report failures = %+v", rep.Failures)
	}
	// The same report again changes nothing; the Mac applying it clears it.
	obs.StatusChanged(ctx, "mac", ddm.StatusUpdate{State: ddm.StateFailed, Reasons: []ddm.Reason{reason}})
	obs.StatusChanged(ctx, "mac", ddm.StatusUpdate{State: ddm.StateConfirmed})
	check(softwareupdate.PhaseNotify, "")

	// A failed install: Apple's reason, until the install is under way again.
	obs.StatusChanged(ctx, "mac", ddm.StatusUpdate{State: ddm.StateConfirmed, InstallFailed: true,
		Current: ddm.Current{InstallState: ddm.InstallFailed, FailureReason: ddm.FailureReason{Count: 1, Reason: "The update could not be verified."}}})
	check(softwareupdate.PhaseFailed, "software update failed: The update could not be verified. (1 failed attempts)")
	obs.StatusChanged(ctx, "mac", ddm.StatusUpdate{State: ddm.StateConfirmed,
		Current: ddm.Current{InstallState: ddm.InstallDownloading, FailureReason: ddm.FailureReason{Count: 1}}})
	check(softwareupdate.PhaseNotify, "")

	h, err := u.store.History(ctx, "mac", 0)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range h {
		if e.Kind == scheduler.EventFailure || strings.HasPrefix(e.Reason, "the Mac recovered") {
			kinds = append(kinds, string(e.Kind)+": "+e.Reason)
		}
	}
	if len(kinds) != 4 {
		t.Errorf("history of failures and recoveries:\n%s", strings.Join(kinds, "\n"))
	}
}

// TestWhatIfCountsIneligibleApart: the what-if of a policy counts an
// unsupervised Mac as ineligible, not among the Macs it will escalate.
func TestWhatIfCountsIneligibleApart(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	seen := now.Add(-time.Hour)
	in := []scheduler.WhatIfInput{
		{DeviceID: "sup", Facts: scheduler.Facts{OSVersion: "15.1", BoardID: "J413AP", Supervised: true, InventoryAt: seen}},
		{DeviceID: "byod", Facts: scheduler.Facts{OSVersion: "15.1", BoardID: "J413AP", InventoryAt: seen}},
	}
	p := softwareupdate.Policy{Mode: "manual", MinimumVersion: "15.2", Date: "2026-03-11", TimeOfDay: "09:00", TimeZone: "UTC", MinimumNoticeDays: 1}
	res, err := scheduler.WhatIf(now, testCatalog(t), "g", p, in)
	if err != nil {
		t.Fatal(err)
	}
	if res.Tomorrow[softwareupdate.PhaseNotify] != 1 || res.Tomorrow[softwareupdate.PhaseIneligible] != 1 {
		t.Errorf("tomorrow %v, forced %d", res.Tomorrow, res.ForcedWithin24h)
	}
}
