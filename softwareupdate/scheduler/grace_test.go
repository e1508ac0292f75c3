package scheduler_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/legacy"
)

// TestPolicyOfflineGrace: a policy's offline grace applies even where the
// server's is off. A Mac that never answered its download is held at its
// forced-install time; when it answers a day later it gets the policy's
// two hours, then the forced install. A grace above 72 hours is refused.
func TestPolicyOfflineGrace(t *testing.T) {
	ctx := t.Context()
	u := newUnit(t, utcAt(2026, 3, 2, 9, 0)) // the server's grace is off in this harness
	pol := softwareupdate.Policy{Mode: softwareupdate.ModeManual, MinimumVersion: "15.2", Date: "2026-03-20", TimeOfDay: "17:00",
		TimeZone: "UTC", Path: softwareupdate.PathLegacy, OfflineGraceHours: 73}
	var ve *softwareupdate.ValidationError
	if _, err := u.mgr.SetPolicy(ctx, "admin", "default", pol); !errors.As(err, &ve) {
		t.Fatalf("73-hour grace = %v, want a validation error", err)
	}
	pol.OfflineGraceHours = 2
	if _, err := u.mgr.SetPolicy(ctx, "admin", "default", pol); err != nil {
		t.Fatal(err)
	}
	u.addMac("away", "15.1", "J413AP", true)
	u.pass()
	D := utcAt(2026, 3, 20, 17, 0)
	u.clk.Set(D.Add(-24 * time.Hour))
	u.pass() // download sent; the Mac is away and never answers
	u.clk.Set(D.Add(softwareupdate.CountdownWindow))
	u.pass()
	st := u.state("away")
	if st.Phase != softwareupdate.PhaseEnforce || st.OfflineAt.IsZero() || hasStep(u.history("away"), legacy.StepForce) {
		t.Fatalf("away at its forced-install time: %s offline %v, history %+v", st.Phase, st.OfflineAt, u.history("away"))
	}
	u.clk.Set(D.Add(24 * time.Hour))
	u.sched.Reevaluate() // a sweep while it is away starts no grace
	u.pass()
	if st := u.state("away"); hasStep(u.history("away"), legacy.StepForce) || !st.GraceUntil.IsZero() {
		t.Fatalf("while still away: grace until %v, history %+v", st.GraceUntil, u.history("away"))
	}
	// It comes back and answers the download.
	back := u.clk.Now()
	raw := []byte(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict><key>CommandUUID</key><string>` + st.StepCommand + `</string><key>Status</key><string>Acknowledged</string>
<key>UDID</key><string>away</string><key>UpdateResults</key><array><dict><key>InstallAction</key><string>DownloadOnly</string>
<key>ProductKey</key><string>MSU_UPDATE_24C101_patch_15.2_minor</string><key>Status</key><string>Downloading</string></dict></array></dict></plist>`)
	if err := u.sched.HandleResult(ctx, "away", "ScheduleOSUpdate", &mdm.Report{Status: mdm.Acknowledged, CommandUUID: st.StepCommand}, raw); err != nil {
		t.Fatal(err)
	}
	if st := u.state("away"); !st.GraceUntil.Equal(back.Add(2*time.Hour)) || !st.NextDue.Before(back.Add(2*time.Hour).Add(time.Second)) {
		t.Fatalf("after it answered: grace until %v, next due %v; want %v", st.GraceUntil, st.NextDue, back.Add(2*time.Hour))
	}
	u.clk.Set(back.Add(2*time.Hour - time.Minute))
	u.pass()
	if hasStep(u.history("away"), legacy.StepForce) {
		t.Fatal("forced during the grace")
	}
	u.clk.Set(back.Add(2 * time.Hour))
	u.pass()
	if !hasStep(u.history("away"), legacy.StepForce) {
		t.Fatalf("not forced when the grace ended: %+v", u.history("away"))
	}
	var notes int
	for _, h := range u.history("away") {
		if strings.Contains(h.Reason, "offline grace") {
			notes++
		}
	}
	if notes != 2 {
		t.Errorf("history records the grace %d times, want 2", notes)
	}
}

// TestPauseDuringOfflineGrace: a pause issued while a Mac that came back
// after its deadline is in its offline grace holds it past the grace's
// end; resuming gives it fresh minimum notice instead of an immediate
// forced install.
func TestPauseDuringOfflineGrace(t *testing.T) {
	ctx := t.Context()
	u := newUnit(t, utcAt(2026, 3, 2, 9, 0))
	if _, err := u.mgr.SetPolicy(ctx, "admin", "default", softwareupdate.Policy{Mode: softwareupdate.ModeManual, MinimumVersion: "15.2",
		Date: "2026-03-20", TimeOfDay: "17:00", TimeZone: "UTC", Path: softwareupdate.PathLegacy, OfflineGraceHours: 4}); err != nil {
		t.Fatal(err)
	}
	u.addMac("away", "15.1", "J413AP", true)
	u.pass()
	D := utcAt(2026, 3, 20, 17, 0)
	u.clk.Set(D.Add(-24 * time.Hour))
	u.pass()
	st := u.state("away")
	u.clk.Set(D.Add(24 * time.Hour))
	u.pass() // held: offline at its deadline
	raw := []byte(`<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict><key>CommandUUID</key><string>` + st.StepCommand + `</string><key>Status</key><string>Acknowledged</string>
<key>UDID</key><string>away</string><key>UpdateResults</key><array><dict><key>InstallAction</key><string>DownloadOnly</string>
<key>ProductKey</key><string>MSU_UPDATE_24C101_patch_15.2_minor</string><key>Status</key><string>Downloading</string></dict></array></dict></plist>`)
	if err := u.sched.HandleResult(ctx, "away", "ScheduleOSUpdate", &mdm.Report{Status: mdm.Acknowledged, CommandUUID: st.StepCommand}, raw); err != nil {
		t.Fatal(err)
	}
	if u.state("away").GraceUntil.IsZero() {
		t.Fatal("no grace after it came back")
	}
	u.clk.Set(u.clk.Now().Add(time.Hour))
	if _, err := u.mgr.Pause(ctx, "oncall", "", "bad build"); err != nil {
		t.Fatal(err)
	}
	u.pass()
	if st := u.state("away"); st.Phase != softwareupdate.PhasePaused || !st.GraceUntil.IsZero() {
		t.Fatalf("paused in its grace: %s, grace until %v", st.Phase, st.GraceUntil)
	}
	u.clk.Set(u.clk.Now().Add(6 * time.Hour)) // past the grace's end
	u.pass()
	if hasStep(u.history("away"), legacy.StepForce) {
		t.Fatal("forced while paused")
	}
	resumed := u.clk.Now()
	if err := u.mgr.Resume(ctx, "oncall", ""); err != nil {
		t.Fatal(err)
	}
	u.pass()
	st = u.state("away")
	if hasStep(u.history("away"), legacy.StepForce) || st.Deadline.Before(resumed.Add(5*24*time.Hour)) {
		t.Fatalf("after resume: %s deadline %v, forced %v; want fresh notice from %v", st.Phase, st.Deadline, hasStep(u.history("away"), legacy.StepForce), resumed)
	}
}
