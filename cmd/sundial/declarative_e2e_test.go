package main

// End-to-end test of the declarative path through the real server (issues
// 5 and 6): a supervised macOS 15 Mac gets a
// softwareupdate.enforcement.specific declaration whose TargetLocalDateTime
// is its deadline + 30 minutes in the policy's zone, and after the agent
// reports that the Mac is in Tokyo, in Tokyo wall-clock time.

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/agent"
	"github.com/sundial-mdm/sundial/mdm/ddm"
	"github.com/sundial-mdm/sundial/mdm/mdmtest"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// declarativeTarget picks the newest macOS 15 release with a known build
// and simulated hardware that can install it.
func declarativeTarget(t *testing.T) (catalog.Release, mdmtest.Hardware) {
	t.Helper()
	rs := catalog.Default().Major(15)
	for i := len(rs) - 1; i >= 0; i-- {
		if rs[i].Build == "" {
			continue
		}
		for _, hw := range mdmtest.KnownHardware {
			if rs[i].Supports(hw.SoftwareUpdateDeviceID) {
				return rs[i], hw
			}
		}
	}
	t.Fatal("the embedded catalog has no macOS 15 release with a build for simulated hardware")
	return catalog.Release{}, mdmtest.Hardware{}
}

// macEnforcement returns the enforcement declaration the Mac holds.
func macEnforcement(t *testing.T, mac *mdmtest.Device) (ddm.EnforcementPayload, mdmtest.DeclarationState) {
	t.Helper()
	for _, d := range mac.Declarations() {
		if d.Type == ddm.TypeEnforcementSpecific {
			var p ddm.EnforcementPayload
			if err := json.Unmarshal(d.Payload, &p); err != nil {
				t.Fatalf("enforcement payload on the Mac: %v", err)
			}
			return p, d
		}
	}
	t.Fatalf("the Mac holds no enforcement declaration: %+v", mac.Declarations())
	return ddm.EnforcementPayload{}, mdmtest.DeclarationState{}
}

func TestAgentTimeZoneMovesDeclarativeDeadline(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	ctx := t.Context()
	target, hw := declarativeTarget(t)
	tv := target.Version.String()
	mac := enrollAgentMac(t, ts, mdmtest.WithHardware(hw), mdmtest.WithOS("15.0", "24A335"), mdmtest.WithSupervised(true),
		mdmtest.WithCatalog(mdmtest.MinorUpdate(tv, target.Build)))

	// Deadline D in 3 days at noon Berlin time: notify phase, declarative
	// path chosen automatically (supervised macOS 15).
	berlin, _ := time.LoadLocation("Europe/Berlin")
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	date, deadline := policyDate(berlin, 3)
	st := manage(t, ts, mac.UDID, "ddm-pilot", softwareupdate.Policy{
		Mode: softwareupdate.ModeManual, MinimumVersion: tv, Date: date, TimeOfDay: "12:00",
		TimeZone: "Europe/Berlin", MinimumNoticeDays: 1, DetailsURL: "https://it.example.com/macos",
	}, softwareupdate.PhaseNotify)
	if st.Path != softwareupdate.PathDeclarative || st.Target != tv || !st.Deadline.Equal(deadline) {
		t.Fatalf("state = path %s target %s deadline %s; want declarative %s %s", st.Path, st.Target, st.Deadline, tv, deadline)
	}

	// The desired enforcement: D + 30 min as Berlin wall-clock time.
	rec, err := ts.app.ddm.Record(ctx, mac.UDID)
	if err != nil || rec.Enforcement == nil {
		t.Fatalf("DDM record = %+v, %v; want an enforcement", rec, err)
	}
	wantBerlin := ddm.EnforcementPayload{TargetOSVersion: tv, TargetLocalDateTime: date + "T12:30:00", DetailsURL: "https://it.example.com/macos"}
	if rec.Enforcement.Payload != wantBerlin || rec.Enforcement.Zone != "Europe/Berlin" || !rec.Enforcement.Deadline.Equal(deadline) {
		t.Fatalf("enforcement = %+v\nwant payload %+v in Europe/Berlin, deadline %s", rec.Enforcement, wantBerlin, deadline)
	}
	syncs, queued := countCommands(t, ts, mac.UDID, "DeclarativeManagement")
	if syncs != 1 || queued != 1 {
		t.Fatalf("%d DeclarativeManagement commands (%d queued), want 1 queued", syncs, queued)
	}
	// The Mac syncs and holds it.
	sess, err := mac.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(sess.RequestTypes(), "DeclarativeManagement") || mac.LastSyncError() != nil {
		t.Fatalf("connect = %s, sync error %v", statuses(sess), mac.LastSyncError())
	}
	if got, _ := macEnforcement(t, mac.Device); got != wantBerlin {
		t.Fatalf("the Mac's enforcement = %+v, want %+v", got, wantBerlin)
	}

	// The agent's plan names the declarative path; fetching it reports
	// the Mac's zone, Tokyo.
	client := newAgentClient(t, *mac.Settings)
	client.TimeZone = zoneOf("Asia/Tokyo")
	plan, err := client.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !plan.Declarative() || plan.TargetVersion != tv || !plan.Deadline.Equal(deadline) || !plan.Active() {
		t.Fatalf("plan = %+v", plan)
	}
	if tz := agentState(t, ts, mac.UDID).TimeZone; tz != "Asia/Tokyo" {
		t.Fatalf("stored time zone = %q, want Asia/Tokyo", tz)
	}

	// After the scheduler runs, TargetLocalDateTime is D + 30 min on Tokyo's
	// wall clock (the same instant), and a new sync was queued.
	wantTokyo := wantBerlin
	wantTokyo.TargetLocalDateTime = deadline.Add(30 * time.Minute).In(tokyo).Format("2006-01-02T15:04:05")
	if wantTokyo.TargetLocalDateTime == wantBerlin.TargetLocalDateTime {
		t.Fatal("Tokyo and Berlin wall clocks agree: the test proves nothing")
	}
	// (The record is written before the sync is queued, and the server's
	// own scheduler loop may be the one writing it: wait for both.)
	schedState(t, ts, mac.UDID, func(*scheduler.State) bool {
		rec, err = ts.app.ddm.Record(ctx, mac.UDID)
		if err != nil || rec.Enforcement == nil || rec.Enforcement.Payload != wantTokyo {
			return false
		}
		syncs, queued = countCommands(t, ts, mac.UDID, "DeclarativeManagement")
		return syncs > 1
	})
	if rec.Enforcement.Zone != "Asia/Tokyo" || !rec.Enforcement.Deadline.Equal(deadline) {
		t.Errorf("enforcement after the zone report = zone %s deadline %s", rec.Enforcement.Zone, rec.Enforcement.Deadline)
	}
	if syncs != 2 || queued != 1 {
		t.Fatalf("%d DeclarativeManagement commands (%d queued), want a second one queued", syncs, queued)
	}
	if n, _ := countCommands(t, ts, mac.UDID, "ScheduleOSUpdate"); n != 0 {
		t.Errorf("%d legacy ScheduleOSUpdate commands sent to a declarative Mac", n)
	}
	if _, err := mac.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	got, decl := macEnforcement(t, mac.Device)
	if got != wantTokyo || decl.ServerToken != rec.Enforcement.ServerToken {
		t.Errorf("the Mac's enforcement = %+v (token %s), want %+v (token %s)", got, decl.ServerToken, wantTokyo, rec.Enforcement.ServerToken)
	}

	// The same zone again changes nothing and queues nothing.
	if _, err := client.Plan(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.app.sched.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if syncs, _ = countCommands(t, ts, mac.UDID, "DeclarativeManagement"); syncs != 2 {
		t.Errorf("re-reporting the same zone queued another sync (%d in all)", syncs)
	}

	// Start Now on the declarative path opens Software Update on the Mac
	// and sends no install command.
	if err := client.Report(ctx, []agent.Event{{Kind: agent.EventInstallRequested, At: time.Now(), TargetVersion: tv, Path: agent.PathDeclarative}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.app.sched.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := countCommands(t, ts, mac.UDID, "ScheduleOSUpdate"); n != 0 {
		t.Errorf("Start Now on the declarative path sent %d ScheduleOSUpdate", n)
	}
}
