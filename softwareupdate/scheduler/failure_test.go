package scheduler_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/mdm/mdmtest"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// TestFailureAndStartNow: through the real HTTP stack, a Mac without the
// space for the update surfaces DownloadInsufficientSpace as a failure, is
// retried after the backoff once space was freed, and installs when its user
// chooses Start Now; an unsupervised Mac is ineligible (never failed),
// never sent update commands.
func TestFailureAndStartNow(t *testing.T) {
	ctx := t.Context()
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
	tight := s.enroll(t, rec, "tight", mdmtest.WithSupervised(true), mdmtest.WithHardware(hwAir), mdmtest.WithOS("15.1", "24B83"),
		mdmtest.WithCapacity(256, 3), mdmtest.WithCatalog(mdmtest.MinorUpdate("15.2", "24C101")))
	byod := s.enroll(t, rec, "byod", mdmtest.WithSupervised(false), mdmtest.WithHardware(hwPro), mdmtest.WithOS("15.1", "24B83"),
		mdmtest.WithCatalog(mdmtest.MinorUpdate("15.2", "24C101")))
	macs := []*mac{tight, byod}
	step := func(when time.Time, want ...string) {
		t.Helper()
		clk.Set(when)
		s.settle(t, macs...)
		var have []string
		for _, x := range rec.take() {
			have = append(have, strings.TrimSpace(x.Mac+" "+x.Type+" "+x.Action))
		}
		if strings.Join(have, "; ") != strings.Join(want, "; ") {
			t.Fatalf("%v: sent %q, want %q", when.Sub(t0), have, want)
		}
	}
	step(t0, "byod DeviceInformation", "tight DeviceInformation", "tight ScheduleOSUpdateScan")
	// The scan runs in the background: the list is asked once it had time.
	step(t0.Add(10*time.Minute), "tight AvailableOSUpdates")
	if st := state(t, s, byod); st.Phase != softwareupdate.PhaseIneligible || st.Reason != "ineligible: not supervised" || st.Failure != "" {
		t.Fatalf("byod = %s %q %q", st.Phase, st.Reason, st.Failure)
	}

	notify := D.Add(-softwareupdate.NotifyWindow)
	step(notify, "tight ScheduleOSUpdate DownloadOnly/High")
	st := state(t, s, tight)
	if st.Phase != softwareupdate.PhaseFailed || !strings.Contains(st.Failure, "DownloadInsufficientSpace") || !st.RetryAt.Equal(notify.Add(time.Hour)) {
		t.Fatalf("tight after download = %s %q retry %v", st.Phase, st.Failure, st.RetryAt)
	}
	tight.dev.SetAvailableDeviceCapacity(120)
	step(notify.Add(30 * time.Minute)) // still backing off
	retry := notify.Add(time.Hour)
	step(retry, "tight ScheduleOSUpdate DownloadOnly/High")
	if st := state(t, s, tight); st.Phase != softwareupdate.PhaseNotify || st.Failure != "" {
		t.Fatalf("tight after retry = %s %q", st.Phase, st.Failure)
	}

	// Start Now (from the agent) installs at once.
	startNow := retry.Add(20 * time.Minute)
	clk.Set(startNow)
	if _, err := s.sched.StartNow(ctx, tight.dev.UDID); err != nil {
		t.Fatal(err)
	}
	step(startNow, "tight ScheduleOSUpdate InstallASAP")
	step(startNow.Add(30*time.Minute), "tight DeviceInformation")
	if st := state(t, s, tight); st.Phase != softwareupdate.PhaseCompliant || tight.dev.OSVersion() != "15.2" {
		t.Fatalf("tight after Start Now = %s on %s", st.Phase, tight.dev.OSVersion())
	}
	// The unsupervised Mac is still only reported, well after its deadline.
	step(D.Add(2 * time.Hour))
	if st := state(t, s, byod); st.Phase != softwareupdate.PhaseIneligible {
		t.Fatalf("byod = %s", st.Phase)
	}
	rep, err := s.mgr.Device(ctx, tight.dev.UDID, 0)
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, h := range rep.History {
		reasons = append(reasons, string(h.Kind)+":"+h.Reason)
	}
	joined := strings.Join(reasons, "\n")
	for _, want := range []string{"failure:ScheduleOSUpdate DownloadOnly: DownloadInsufficientSpace", "result:the user chose Start Now", "phase:runs the target version or newer"} {
		if !strings.Contains(joined, want) {
			t.Errorf("history lacks %q:\n%s", want, joined)
		}
	}
}
