package scheduler_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/mdm/mdmtest"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// Issue 20 (items 2, 3, 10, 11) end to end: Macs that misbehave the way
// real Macs do, over the real HTTP stack on a fake clock.

type legacyRun struct {
	t    *testing.T
	clk  *clock.Fake
	s    *stack
	rec  *recorder
	t0   time.Time
	D    time.Time
	macs []*mac
}

func newLegacyRun(t *testing.T) *legacyRun {
	return newLegacyRunWith(t, testCatalog(t), softwareupdate.Policy{Mode: softwareupdate.ModeManual, MinimumVersion: "15.2"})
}

// newLegacyRunWith sets p (its deadline: day 10 at 17:00 UTC) as the
// default group's policy over catalog cat.
func newLegacyRunWith(t *testing.T, cat *catalog.Catalog, p softwareupdate.Policy) *legacyRun {
	t0 := time.Now().UTC().Truncate(time.Hour)
	y, m, d := t0.Date()
	r := &legacyRun{t: t, t0: t0, D: time.Date(y, m, d+10, 17, 0, 0, 0, time.UTC), clk: clock.NewFake(t0)}
	r.s = newStack(t, r.clk, cat)
	r.rec = &recorder{clk: r.clk}
	p.Date, p.TimeOfDay, p.TimeZone = r.D.Format(time.DateOnly), "17:00", "UTC"
	if _, err := r.s.mgr.SetPolicy(t.Context(), "admin@example.com", scheduler.DefaultGroupID, p); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *legacyRun) enroll(name string, opts ...mdmtest.Option) *mac {
	all := append([]mdmtest.Option{mdmtest.WithSupervised(true), mdmtest.WithHardware(hwAir), mdmtest.WithOS("15.1", "24B83"),
		mdmtest.WithCatalog(mdmtest.MinorUpdate("15.2", "24C101"))}, opts...)
	m := r.s.enroll(r.t, r.rec, name, all...)
	r.macs = append(r.macs, m)
	return m
}

// until runs the timeline from the clock's now to end in steps of every,
// connecting the Macs after each pass, and returns what they received.
func (r *legacyRun) until(end time.Time, every time.Duration) []sent {
	r.t.Helper()
	for at := r.clk.Now(); !at.After(end); at = at.Add(every) {
		r.clk.Set(at)
		r.s.settle(r.t, r.macs...)
	}
	return r.rec.take()
}

func count(list []sent, m *mac, typ, action string) int {
	n := 0
	for _, x := range list {
		if x.Mac == m.name && x.Type == typ && (action == "" || x.Action == action) {
			n++
		}
	}
	return n
}

func history(t *testing.T, s *stack, m *mac) string {
	t.Helper()
	rep, err := s.mgr.Device(t.Context(), m.dev.UDID, 0)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, h := range rep.History {
		b.WriteString(h.At.Format("01-02 15:04 ") + string(h.Kind) + " " + h.Step + ": " + h.Reason + "\n")
	}
	return b.String()
}

// Item 2: a Mac restarts in the middle of the forced install; the server
// re-sends the command and the Mac acknowledges it without UpdateResults.
// It is compliant at once: no failure, no second install.
func TestRestartMidUpdateEndsCompliant(t *testing.T) {
	r := newLegacyRun(t)
	m := r.enroll("rebooter")
	m.dev.RestartMidUpdate(1)
	enforce := r.D.Add(softwareupdate.CountdownWindow)
	r.until(r.t0.Add(10*time.Minute), 10*time.Minute)
	r.clk.Set(r.D.Add(-softwareupdate.NotifyWindow))
	r.until(r.clk.Now().Add(time.Hour), time.Hour)
	r.clk.Set(enforce)
	got := r.until(enforce.Add(24*time.Hour), 30*time.Minute)
	st := state(t, r.s, m)
	if st.Phase != softwareupdate.PhaseCompliant || m.dev.OSVersion() != "15.2" {
		t.Fatalf("phase %s on %s; history:\n%s", st.Phase, m.dev.OSVersion(), history(t, r.s, m))
	}
	h := history(t, r.s, m)
	if strings.Contains(h, "failure") || !strings.Contains(h, "without UpdateResults") {
		t.Errorf("history:\n%s", h)
	}
	// The one command is received twice (its report was lost in the
	// restart); no second install command is queued.
	if n := count(got, m, "ScheduleOSUpdate", "InstallForceRestart"); n != 2 {
		t.Errorf("InstallForceRestart received %d times, want 2 (the same command re-sent):\n%s", n, diffSent(got, nil))
	}
	if n := strings.Count(h, "step install-force: "); n != 1 {
		t.Errorf("%d install steps in history, want 1:\n%s", n, h)
	}
}

// Item 3: a Mac answers Error to ScheduleOSUpdate for two days of its
// notice window; the errors are shown, retried with backoff, and the
// forced install still goes out at the deadline. A Mac that keeps failing
// past the deadline ends failed with Apple's error chain, retried daily.
func TestErrorsDoNotCancelTheDeadline(t *testing.T) {
	r := newLegacyRun(t)
	flaky := r.enroll("flaky")
	broken := r.enroll("broken")
	notify := r.D.Add(-softwareupdate.NotifyWindow)
	chain := mdmtest.ErrorChainItem{ErrorCode: 12021, ErrorDomain: "MCMDMErrorDomain", LocalizedDescription: "Software update service unavailable"}
	flaky.dev.AnswerErrorUntil("ScheduleOSUpdate", notify.Add(48*time.Hour), chain)
	broken.dev.AnswerErrorUntil("ScheduleOSUpdate", r.D.Add(30*24*time.Hour), chain)
	r.until(r.t0.Add(10*time.Minute), 10*time.Minute)
	r.clk.Set(notify)
	r.until(notify.Add(2*time.Hour), time.Hour)
	if st := state(t, r.s, flaky); st.Phase != softwareupdate.PhaseFailed || !strings.Contains(st.Failure, "12021") || st.RetryAt.IsZero() {
		t.Fatalf("flaky during the errors: %s %q retry %v", st.Phase, st.Failure, st.RetryAt)
	}
	got := r.until(r.D.Add(2*time.Hour), time.Hour)
	enforce := r.D.Add(softwareupdate.CountdownWindow)
	if st := state(t, r.s, flaky); st.Phase != softwareupdate.PhaseCompliant {
		t.Fatalf("flaky at D+2h: %s %q; history:\n%s", st.Phase, st.Failure, history(t, r.s, flaky))
	}
	// The broken Mac got its forced install at the deadline and failed with
	// Apple's chain.
	var forcedAt []string
	for _, x := range got {
		if x.Mac == "broken" && x.Action == "InstallForceRestart" {
			forcedAt = append(forcedAt, x.At)
		}
	}
	if len(forcedAt) == 0 || forcedAt[0] != enforce.Add(30*time.Minute).Format("01-02 15:04") && forcedAt[0] != enforce.Format("01-02 15:04") {
		t.Fatalf("broken: forced installs at %v, want the first at %v", forcedAt, enforce)
	}
	// Past the deadline, every failed install attempt is counted once and
	// the last one leaves the Mac failed with the chain, retried daily.
	r.until(r.D.Add(4*24*time.Hour), 2*time.Hour)
	st := state(t, r.s, broken)
	if st.Phase != softwareupdate.PhaseFailed || !strings.Contains(st.Failure, "MCMDMErrorDomain 12021: Software update service unavailable") ||
		!strings.Contains(st.Failure, "retrying daily") || st.RetryAt.IsZero() || st.Attempts < 5 {
		t.Fatalf("broken after four days: %s %q retry %v attempts %d; history:\n%s", st.Phase, st.Failure, st.RetryAt, st.Attempts, history(t, r.s, broken))
	}
	if n := strings.Count(history(t, r.s, broken), "step install-force: "); n != st.Attempts {
		t.Errorf("history shows %d install steps, attempts %d", n, st.Attempts)
	}
}

// Item 10: the user's Start Now is acknowledged but nothing installs. One
// InstallASAP is sent, counted and shown; nothing is re-sent every 30
// minutes; the deadline's forced install then updates the Mac.
func TestStartNowThatDoesNotInstall(t *testing.T) {
	r := newLegacyRun(t)
	m := r.enroll("pressed")
	m.dev.IgnoreInstallASAP(10)
	r.until(r.t0.Add(10*time.Minute), 10*time.Minute)
	notify := r.D.Add(-softwareupdate.NotifyWindow)
	r.clk.Set(notify)
	r.until(notify.Add(2*time.Hour), time.Hour)
	if _, err := r.s.sched.StartNow(t.Context(), m.dev.UDID); err != nil {
		t.Fatal(err)
	}
	got := r.until(r.D.Add(2*time.Hour), 30*time.Minute)
	if n := count(got, m, "ScheduleOSUpdate", "InstallASAP"); n != 1 {
		t.Errorf("InstallASAP sent %d times, want 1:\n%s", n, diffSent(got, nil))
	}
	st := state(t, r.s, m)
	if st.Phase != softwareupdate.PhaseCompliant || st.Attempts != 0 && st.Attempts != 2 {
		t.Fatalf("phase %s attempts %d; history:\n%s", st.Phase, st.Attempts, history(t, r.s, m))
	}
	h := history(t, r.s, m)
	for _, want := range []string{"Start Now: InstallASAP (install attempt 1 of 5)", "Start Now did not install 15.2", "install attempt 2 of 5"} {
		if !strings.Contains(h, want) {
			t.Errorf("history lacks %q:\n%s", want, h)
		}
	}
}

// Item 11: the scan runs in the background; the list is asked once it had
// time to run. A Mac that has never scanned offers the target only after
// its scan, so a list asked in the scan's session would lack it.
func TestListAfterTheScan(t *testing.T) {
	r := newLegacyRun(t)
	m := r.enroll("scanner")
	m.dev.SetScanDuration(3 * time.Minute)
	r.until(r.t0.Add(10*time.Minute), 10*time.Minute)
	st := state(t, r.s, m)
	if st.ProductKey != "MSU_UPDATE_24C101_patch_15.2_minor" {
		t.Fatalf("product key %q; history:\n%s", st.ProductKey, history(t, r.s, m))
	}
	if h := history(t, r.s, m); !strings.Contains(h, "list taken at "+r.t0.Add(10*time.Minute).Format(time.RFC3339)) {
		t.Errorf("history lacks when the list was taken:\n%s", h)
	}
}

// Item 9: a macOS 13 Mac offered both the OTA update and the full installer
// of its major upgrade gets the OTA one, whatever the list order; a Mac
// offered only the full installer is sent InstallASAP and nothing else.
// Every Mac reaches the target.
func TestMajorUpgradeFromMacOS13PicksOTA(t *testing.T) {
	rel := func(v, build string) catalog.Release {
		return catalog.Release{Version: catalog.MustParseVersion(v), Build: build, PostingDate: time.Date(2025, 1, 27, 0, 0, 0, 0, time.UTC),
			SupportedDevices: []string{"J413AP", "J493AP"}}
	}
	cat, err := catalog.New(rel("13.6.7", "22G720"), rel("14.7.3", "23H417"))
	if err != nil {
		t.Fatal(err)
	}
	r := newLegacyRunWith(t, cat, softwareupdate.Policy{Mode: softwareupdate.ModeManual, MinimumVersion: "14.7.3", AllowMajorUpgrades: true})
	ota, full := mdmtest.MajorUpdate("14.7.3", "23H417"), mdmtest.FullInstaller("14.7.3", "23H417")
	os13 := mdmtest.WithOS("13.6.7", "22G720")
	fullFirst := r.enroll("full-first", os13, mdmtest.WithCatalog(full, ota))
	otaFirst := r.enroll("ota-first", os13, mdmtest.WithCatalog(ota, full))
	onlyFull := r.enroll("only-full", os13, mdmtest.WithCatalog(full))
	got := r.until(r.t0.Add(10*time.Minute), 10*time.Minute)
	for _, m := range []*mac{fullFirst, otaFirst} {
		if st := state(t, r.s, m); st.ProductKey != ota.ProductKey || !st.MajorUpgrade {
			t.Fatalf("%s: product key %q (major %v)", m.name, st.ProductKey, st.MajorUpgrade)
		}
	}
	if st := state(t, r.s, onlyFull); st.ProductKey != full.ProductKey {
		t.Fatalf("only-full: product key %q", st.ProductKey)
	}
	notify := r.D.Add(-softwareupdate.NotifyWindow)
	r.clk.Set(notify)
	got = append(got, r.until(r.D.Add(2*time.Hour), time.Hour)...)
	for _, m := range []*mac{fullFirst, otaFirst} {
		if n := count(got, m, "ScheduleOSUpdate", "DownloadOnly"); n != 1 {
			t.Errorf("%s: %d DownloadOnly (no priority: a major upgrade), want 1:\n%s", m.name, n, diffSent(got, nil))
		}
	}
	for _, x := range got {
		if x.Mac == "only-full" && x.Type == "ScheduleOSUpdate" && x.Action != "InstallASAP" {
			t.Errorf("only-full was sent %s: a full installer takes InstallASAP only", x.Action)
		}
	}
	for _, m := range []*mac{fullFirst, otaFirst, onlyFull} {
		if st := state(t, r.s, m); st.Phase != softwareupdate.PhaseCompliant || m.dev.OSVersion() != "14.7.3" {
			t.Errorf("%s: %s on %s; history:\n%s", m.name, st.Phase, m.dev.OSVersion(), history(t, r.s, m))
		}
	}
}
