package scheduler_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/mdm/mdmtest"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// Board IDs: two Apple-silicon models the releases support and an Intel
// MacBook Pro they do not.
var (
	hwAir   = mdmtest.Hardware{ProductName: "Mac14,2", ModelName: "MacBook Air", SoftwareUpdateDeviceID: "J413AP", IsAppleSilicon: true}
	hwPro   = mdmtest.Hardware{ProductName: "Mac14,7", ModelName: "MacBook Pro", SoftwareUpdateDeviceID: "J493AP", IsAppleSilicon: true}
	hwIntel = mdmtest.Hardware{ProductName: "MacBookPro16,1", ModelName: "MacBook Pro", SoftwareUpdateDeviceID: "J152FAP"}
)

func testCatalog(t testing.TB) *catalog.Catalog {
	t.Helper()
	rel := func(v, build, posted string) catalog.Release {
		d, _ := time.Parse(time.DateOnly, posted)
		return catalog.Release{Version: catalog.MustParseVersion(v), Build: build, PostingDate: d, SupportedDevices: []string{"J413AP", "J493AP"}}
	}
	c, err := catalog.New(
		rel("14.6", "23G80", "2025-07-29"),
		rel("14.6.1", "23G93", "2026-02-20"),
		rel("15.1", "24B83", "2025-10-28"),
		rel("15.2", "24C101", "2026-02-20"),
	)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTimeline drives four simulated Macs from pending to compliant through
// the real HTTP stack on a fake clock, asserting every command each Mac
// receives and when:
//
//   - sonoma (14.6) is held to 14.6.1 (no major upgrades), sequoia (15.1)
//     must reach 15.2 by 2026-03-12 17:00 Europe/Berlin (16:00 UTC);
//   - old (14.6 on an Intel board the releases do not support) is reported
//     unsupported and never sent an update command;
//   - traveller (15.1) is offline from before the notify window until the
//     day after its deadline: its forced install waits for the offline
//     grace (4 hours) after its first connection;
//   - the server restarts between queueing the forced installs and their
//     delivery, and nothing is sent twice.
func TestTimeline(t *testing.T) {
	ctx := t.Context()
	// The simulated Macs sign their SCEP requests with certificates valid
	// around their clock, and the SCEP library checks them against the real
	// clock: start the fake clock at the real hour. The policy's zone is UTC
	// so that the timeline is the same on every date.
	t0 := time.Now().UTC().Truncate(time.Hour)
	y, m, d := t0.Date()
	D := time.Date(y, m, d+10, 17, 0, 0, 0, time.UTC)
	clk := clock.NewFake(t0)
	s := newStack(t, clk, testCatalog(t))
	rec := &recorder{clk: clk}

	if _, err := s.mgr.SetPolicy(ctx, "admin@example.com", scheduler.DefaultGroupID, softwareupdate.Policy{
		Mode: softwareupdate.ModeManual, MinimumVersion: "15.2", Date: D.Format(time.DateOnly), TimeOfDay: "17:00", TimeZone: "UTC",
	}); err != nil {
		t.Fatal(err)
	}
	sup := mdmtest.WithSupervised(true)
	sonoma := s.enroll(t, rec, "sonoma", sup, mdmtest.WithHardware(hwAir), mdmtest.WithOS("14.6", "23G80"), mdmtest.WithCatalog(mdmtest.MinorUpdate("14.6.1", "23G93")))
	sequoia := s.enroll(t, rec, "sequoia", sup, mdmtest.WithHardware(hwPro), mdmtest.WithOS("15.1", "24B83"), mdmtest.WithCatalog(mdmtest.MinorUpdate("15.2", "24C101")))
	old := s.enroll(t, rec, "old", sup, mdmtest.WithHardware(hwIntel), mdmtest.WithOS("14.6", "23G80"), mdmtest.WithCatalog(mdmtest.MinorUpdate("14.6.1", "23G93")))
	traveller := s.enroll(t, rec, "traveller", sup, mdmtest.WithHardware(hwAir), mdmtest.WithOS("15.1", "24B83"), mdmtest.WithCatalog(mdmtest.MinorUpdate("15.2", "24C101")))
	macs := []*mac{sonoma, sequoia, old, traveller}

	step := func(when time.Time, want ...sent) {
		t.Helper()
		clk.Set(when)
		s.settle(t, macs...)
		if have := rec.take(); diffSent(have, want) != diffSent(want, want) {
			t.Fatalf("%s: commands received:\n%s", when, diffSent(have, want))
		}
	}
	w := func(when time.Time, mac, typ string, action ...string) sent {
		x := sent{At: when.Format("01-02 15:04"), Mac: mac, Type: typ}
		if len(action) > 0 {
			x.Action = action[0]
		}
		return x
	}

	// Enrollment: inventory, then the pending phase learns product keys:
	// a scan, and the list once the scan had time to run.
	step(t0,
		w(t0, "old", "DeviceInformation"),
		w(t0, "sequoia", "DeviceInformation"), w(t0, "sequoia", "ScheduleOSUpdateScan"),
		w(t0, "sonoma", "DeviceInformation"), w(t0, "sonoma", "ScheduleOSUpdateScan"),
		w(t0, "traveller", "DeviceInformation"), w(t0, "traveller", "ScheduleOSUpdateScan"),
	)
	list := t0.Add(10 * time.Minute)
	step(list, w(list, "sequoia", "AvailableOSUpdates"), w(list, "sonoma", "AvailableOSUpdates"), w(list, "traveller", "AvailableOSUpdates"))
	wantPhase(t, s, old, softwareupdate.PhaseUnsupported)
	wantPhase(t, s, sonoma, softwareupdate.PhasePending)
	if st := state(t, s, sonoma); st.Target != "14.6.1" || st.ProductKey != "MSU_UPDATE_23G93_patch_14.6.1_minor" || !st.Deadline.Equal(D) {
		t.Fatalf("sonoma state = %+v", st)
	}
	// A second pass at the same instant sends nothing.
	step(list)

	traveller.dev.SetOffline(true)
	step(D.Add(-6 * 24 * time.Hour))

	// D-5 days: download with high priority (macOS 12.3+ minor update).
	notify := D.Add(-softwareupdate.NotifyWindow)
	step(notify,
		w(notify, "sequoia", "ScheduleOSUpdate", "DownloadOnly/High"),
		w(notify, "sonoma", "ScheduleOSUpdate", "DownloadOnly/High"),
	)
	wantPhase(t, s, traveller, softwareupdate.PhaseNotify)
	poll := notify.Add(time.Hour)
	step(poll, w(poll, "sequoia", "OSUpdateStatus"), w(poll, "sonoma", "OSUpdateStatus"))
	if st := state(t, s, sequoia); !st.Downloaded {
		t.Fatalf("sequoia not downloaded: %+v", st)
	}
	step(D.Add(-3 * 24 * time.Hour)) // nothing due

	// The deadline: the countdown sends nothing on the legacy path.
	step(D)
	wantPhase(t, s, sonoma, softwareupdate.PhaseCountdown)

	// D+30 min: forced installs are queued; the server restarts before the
	// Macs connect, and the new scheduler queues nothing again.
	enforce := D.Add(softwareupdate.CountdownWindow)
	clk.Set(enforce)
	st, err := s.sched.RunOnce(ctx)
	if err != nil || st.Commands != 2 {
		t.Fatalf("enforce pass = %+v, %v; want 2 commands (sonoma, sequoia; the offline traveller waits)", st, err)
	}
	s.restart()
	if st, err := s.sched.RunOnce(ctx); err != nil || st.Commands != 0 {
		t.Fatalf("pass after restart = %+v, %v; want no commands", st, err)
	}
	step(enforce,
		w(enforce, "sequoia", "ScheduleOSUpdate", "InstallForceRestart"),
		w(enforce, "sonoma", "ScheduleOSUpdate", "InstallForceRestart"),
	)
	// The Macs install (5 min) and restart (2 min); a fresh
	// DeviceInformation confirms compliance.
	verify := enforce.Add(30 * time.Minute)
	step(verify, w(verify, "sequoia", "DeviceInformation"), w(verify, "sonoma", "DeviceInformation"))
	wantPhase(t, s, sonoma, softwareupdate.PhaseCompliant)
	wantPhase(t, s, sequoia, softwareupdate.PhaseCompliant)
	if sonoma.dev.OSVersion() != "14.6.1" || sequoia.dev.OSVersion() != "15.2" {
		t.Fatalf("versions = %s, %s", sonoma.dev.OSVersion(), sequoia.dev.OSVersion())
	}
	wantPhase(t, s, traveller, softwareupdate.PhaseEnforce)

	// The traveller comes back the next morning: its queued download
	// arrives at its first connection, and the forced install only when
	// the offline grace has passed (not in the same session).
	traveller.dev.SetOffline(false)
	back := D.Add(17 * time.Hour)
	step(back, w(back, "traveller", "ScheduleOSUpdate", "DownloadOnly/High"))
	wantPhase(t, s, traveller, softwareupdate.PhaseEnforce)
	if st := state(t, s, traveller); !st.GraceUntil.Equal(back.Add(scheduler.DefaultOfflineGrace)) {
		t.Fatalf("traveller grace until %v, want %v", st.GraceUntil, back.Add(scheduler.DefaultOfflineGrace))
	}
	poll2 := back.Add(time.Hour)
	step(poll2, w(poll2, "traveller", "OSUpdateStatus"))
	graceEnd := back.Add(scheduler.DefaultOfflineGrace)
	step(graceEnd.Add(-time.Minute))
	step(graceEnd, w(graceEnd, "traveller", "ScheduleOSUpdate", "InstallForceRestart"))
	verify2 := graceEnd.Add(30 * time.Minute)
	step(verify2, w(verify2, "traveller", "DeviceInformation"))
	wantPhase(t, s, traveller, softwareupdate.PhaseCompliant)
	if th, err := s.mgr.Device(ctx, traveller.dev.UDID, 0); err != nil {
		t.Fatal(err)
	} else {
		var notes []string
		for _, h := range th.History {
			if strings.Contains(h.Reason, "offline grace") {
				notes = append(notes, h.Reason)
			}
		}
		if len(notes) != 2 {
			t.Errorf("traveller history records the offline grace %d times, want 2 (held, then back): %q", len(notes), notes)
		}
	}
	wantPhase(t, s, old, softwareupdate.PhaseUnsupported)
	step(D.Add(8 * 24 * time.Hour)) // quiet

	// The history explains the forced restart.
	rep, err := s.mgr.Device(ctx, sonoma.dev.UDID, 0)
	if err != nil {
		t.Fatal(err)
	}
	var phases []softwareupdate.Phase
	forced := false
	for _, h := range rep.History {
		if h.Kind == scheduler.EventPhase {
			phases = append(phases, h.To)
		}
		if h.Kind == scheduler.EventStep && h.Step == "install-force" && h.Reason != "" {
			forced = true
		}
	}
	if want := []softwareupdate.Phase{"pending", "notify", "countdown", "enforce", "compliant"}; !equalPhases(phases, want) {
		t.Errorf("sonoma phases = %v, want %v", phases, want)
	}
	if !forced {
		t.Errorf("no install-force step with a reason in history: %+v", rep.History)
	}
}

func equalPhases(a, b []softwareupdate.Phase) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func state(t testing.TB, s *stack, m *mac) *scheduler.State {
	t.Helper()
	sts, err := s.store.States(context.Background(), []string{m.dev.UDID})
	if err != nil || sts[0] == nil {
		t.Fatalf("state of %s: %v, %v", m.name, sts, err)
	}
	return sts[0]
}

func wantPhase(t testing.TB, s *stack, m *mac, want softwareupdate.Phase) {
	t.Helper()
	if st := state(t, s, m); st.Phase != want {
		t.Fatalf("%s phase = %s (%s), want %s", m.name, st.Phase, st.Reason, want)
	}
}
