package mdmtest

import (
	"slices"
	"testing"
	"time"
)

func scheduleCmd(t *testing.T, uuid, key, action string) []byte {
	t.Helper()
	return commandPlist(t, uuid, "ScheduleOSUpdate", map[string]any{
		"Updates": []any{map[string]any{"ProductKey": key, "InstallAction": action}}})
}

// TestRestartMidUpdate: the install goes on, the report is lost, the Mac is
// offline until it is back on the new OS, and the re-sent command is
// acknowledged without UpdateResults.
func TestRestartMidUpdate(t *testing.T) {
	clock := newFakeClock()
	u := MinorUpdate("15.4", "24E248")
	d := newTestDevice(t, WithClock(clock), WithSupervised(true), WithOS("15.3.1", "24D70"), WithCapacity(494, 200), WithCatalog(u))
	d.RestartMidUpdate(1)
	res, _ := handle(t, d, scheduleCmd(t, "FORCE", u.ProductKey, ActionInstallForceRestart))
	if !res.Dropped {
		t.Fatalf("report not lost: %+v", res)
	}
	if d.Online() {
		t.Fatal("Mac online right after it went into the install")
	}
	tm := DefaultTimings()
	clock.Advance(tm.Download + tm.Install + tm.Restart)
	if !d.Online() || d.OSVersion() != "15.4" {
		t.Fatalf("after the restart: online %v on %s", d.Online(), d.OSVersion())
	}
	res, report := handle(t, d, scheduleCmd(t, "FORCE", u.ProductKey, ActionInstallForceRestart))
	if res.Status != StatusAcknowledged || res.Dropped {
		t.Fatalf("re-sent command: %+v", res)
	}
	if _, ok := report["UpdateResults"]; ok {
		t.Errorf("re-sent command answered with UpdateResults: %v", report)
	}
	// Only once: another install command is answered normally.
	if r := schedule(t, d, u.ProductKey, ActionInstallForceRestart); r["InstallAction"] != "Error" {
		t.Errorf("a later command = %v, want the not-available error (15.4 is installed)", r)
	}
}

// TestTimedAnswers: Error and NotNow until a time, then normal answers.
func TestTimedAnswers(t *testing.T) {
	clock := newFakeClock()
	u := MinorUpdate("15.4", "24E248")
	d := newTestDevice(t, WithClock(clock), WithSupervised(true), WithOS("15.3.1", "24D70"), WithCapacity(494, 200), WithCatalog(u))
	d.AnswerErrorUntil("ScheduleOSUpdate", clock.Now().Add(48*time.Hour))
	d.AnswerNotNowUntil("OSUpdateStatus", clock.Now().Add(7*24*time.Hour))
	for range 3 {
		if res, _ := handle(t, d, scheduleCmd(t, "S", u.ProductKey, ActionDownloadOnly)); res.Status != StatusError {
			t.Fatalf("status %s, want Error", res.Status)
		}
		clock.Advance(12 * time.Hour)
	}
	if got := d.Updates(); len(got) != 0 {
		t.Fatalf("an Error answer changed state: %+v", got)
	}
	clock.Advance(12 * time.Hour)
	if r := schedule(t, d, u.ProductKey, ActionDownloadOnly); r["Status"] != UpdateDownloading {
		t.Fatalf("after two days: %v", r)
	}
	if res, _ := handle(t, d, commandPlist(t, "st", "OSUpdateStatus", nil)); res.Status != StatusNotNow {
		t.Fatalf("OSUpdateStatus = %s, want NotNow", res.Status)
	}
	clock.Advance(5 * 24 * time.Hour)
	if res, _ := handle(t, d, commandPlist(t, "st", "OSUpdateStatus", nil)); res.Status != StatusAcknowledged {
		t.Fatalf("OSUpdateStatus after a week = %s", res.Status)
	}
}

// TestIgnoreInstallASAP: Start Now acknowledged, nothing installs.
func TestIgnoreInstallASAP(t *testing.T) {
	clock := newFakeClock()
	u := MinorUpdate("15.4", "24E248")
	d := newTestDevice(t, WithClock(clock), WithSupervised(true), WithOS("15.3.1", "24D70"), WithCapacity(494, 200), WithCatalog(u))
	d.IgnoreInstallASAP(1)
	if r := schedule(t, d, u.ProductKey, ActionInstallASAP); r["InstallAction"] != ActionInstallASAP || r["Status"] != UpdateIdle || r["ProductKey"] != u.ProductKey {
		t.Fatalf("InstallASAP = %v", r)
	}
	clock.Advance(time.Hour)
	if d.OSVersion() != "15.3.1" || len(d.Updates()) != 0 {
		t.Fatalf("ignored InstallASAP installed: %s %+v", d.OSVersion(), d.Updates())
	}
	schedule(t, d, u.ProductKey, ActionInstallASAP) // the next one works
	clock.Advance(time.Hour)
	if d.OSVersion() != "15.4" {
		t.Fatalf("second InstallASAP: %s", d.OSVersion())
	}
}

// TestScanTakesTime: AvailableOSUpdates returns the list from before the
// scan until the scan is done.
func TestScanTakesTime(t *testing.T) {
	clock := newFakeClock()
	old, fresh := MinorUpdate("15.3.2", "24D81"), MinorUpdate("15.4", "24E248")
	d := newTestDevice(t, WithClock(clock), WithSupervised(true), WithOS("15.3.1", "24D70"), WithCatalog(old))
	handle(t, d, commandPlist(t, "scan", "ScheduleOSUpdateScan", map[string]any{"Force": true}))
	if err := d.SetCatalog(old, fresh); err != nil {
		t.Fatal(err)
	}
	d.SetScanDuration(5 * time.Minute)
	_, report := handle(t, d, commandPlist(t, "scan2", "ScheduleOSUpdateScan", map[string]any{"Force": true}))
	if report["ScanInitiated"] != true {
		t.Fatalf("scan report %v", report)
	}
	if got := availableOf(t, d); !slices.Equal(got, []string{old.ProductKey}) {
		t.Fatalf("list during the scan = %v, want the stale one", got)
	}
	clock.Advance(5 * time.Minute)
	if got := availableOf(t, d); !slices.Equal(got, []string{old.ProductKey, fresh.ProductKey}) {
		t.Fatalf("list after the scan = %v", got)
	}
	if s := d.LastScan(); !s.Done || !s.At.Equal(clock.Now()) || !s.Forced {
		t.Errorf("last scan = %+v", s)
	}
}

// TestFullInstallerTakesInstallASAPOnly: a full installer refuses
// DownloadOnly and InstallForceRestart and installs with InstallASAP.
func TestFullInstallerTakesInstallASAPOnly(t *testing.T) {
	clock := newFakeClock()
	full := FullInstaller("14.7.3", "23H417")
	d := newTestDevice(t, WithClock(clock), WithSupervised(true), WithOS("13.6.7", "22G720"), WithCapacity(494, 200), WithCatalog(full))
	for _, action := range []string{ActionDownloadOnly, ActionInstallForceRestart} {
		if r := schedule(t, d, full.ProductKey, action); r["InstallAction"] != "Error" {
			t.Errorf("%s = %v, want an Error item", action, r)
		}
	}
	if r := schedule(t, d, full.ProductKey, ActionInstallASAP); r["InstallAction"] != ActionInstallASAP {
		t.Fatalf("InstallASAP = %v", r)
	}
	clock.Advance(time.Hour)
	if d.OSVersion() != "14.7.3" {
		t.Errorf("after InstallASAP: %s", d.OSVersion())
	}
}
