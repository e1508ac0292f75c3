package scheduler_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/mdm/mdmtest"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// The hostile fleet (issue 20, "Must show"): Macs on macOS 12 to 15, in
// two groups with different deadlines, misbehaving the ways real Macs do,
// over the real HTTP stack on a fake clock. At the last deadline + 2 h:
// no pass failed; every Mac is in the state its behaviour must lead to
// (compliant, or failed with Apple's reason); no Mac got a forced install
// before its deadline or more often than the configured bound; the
// compliance report's counts equal the per-device states.
//
// Behaviours are table rows: a row says how to make a Mac misbehave and
// which outcome it must reach. This test drives the legacy path; the
// declarative path (rejected declarations, failed enforced installs,
// device-local zones reported late) is TestHostileDeclarativeFleet in
// hostile_ddm_test.go, which shares the fleet size and the verdicts.

// hostileFleet is the fleet size; -short and -race run a tenth of it. The 1,000-Mac
// run costs about 52 s of CPU, most of it the simulated Macs' RSA
// signatures (44 %) and SCEP enrolments (14 %): measured with
// `go test -run TestHostileFleet -count=1 -cpuprofile` on the shared
// 2-core development VM, where it took 248 s of wall time at a load
// average of 18; alone on two cores that is about half a minute.
const hostileFleet = 1000

// rePush is how long a Mac that answered NotNow waits for the next push.
const rePush = 4 * time.Hour

// maxForced is the legacy enforcer's default bound on install commands.
const maxForced = 5

type outcome string

const (
	wantCompliant outcome = "compliant"
	// wantFailed: phase failed with a reason containing the row's reason.
	wantFailed outcome = "failed"
	// wantIneligible: phase ineligible with a reason containing the row's
	// reason; never failed, and sent no forced install.
	wantIneligible outcome = "ineligible"
	// wantNeedsBootstrap: flagged needs-bootstrap-token before its
	// deadline; at the end still flagged, and failed with Apple's reason.
	wantNeedsBootstrap outcome = "needs-bootstrap-token"
)

type hostileRow struct {
	name   string
	share  int // Macs per 1,000
	opts   []mdmtest.Option
	setup  func(h *hostile, m *hostileMac)
	want   outcome
	reason string // for wantFailed and wantIneligible: what the reason must say
	// forcedBound overrides maxForced (an admin retry starts a new round).
	forcedBound int
	// noBootstrap: the Mac never escrows a bootstrap token (every other
	// Mac escrows one after enrolling, as an ADE Mac's setup does).
	noBootstrap bool
}

type hostileMac struct {
	name   string
	row    *hostileRow
	dev    *mdmtest.Device
	group  string
	target string

	mu sync.Mutex
	// forced: the InstallForceRestart commands received, first receipt.
	forced map[string]time.Time
}

type hostile struct {
	t        *testing.T
	clk      *clock.Fake
	s        *stack
	macs     []*hostileMac
	byID     map[string]*hostileMac
	enforce  map[string]time.Time // by group: deadline + 30 min
	notified map[string]bool
	busy     map[string]time.Time // answered NotNow or restarting: woken again then
	nmu      sync.Mutex
	passes   int
}

// Notify implements scheduler.Notifier: the push that wakes a Mac.
func (h *hostile) Notify(ids ...string) {
	h.nmu.Lock()
	defer h.nmu.Unlock()
	for _, id := range ids {
		h.notified[id] = true
	}
}

var apple12021 = mdmtest.ErrorChainItem{ErrorCode: 12021, ErrorDomain: "MCMDMErrorDomain", LocalizedDescription: "Software update unavailable", USEnglishDescription: "Software update unavailable"}

func hostileRows(D time.Time) []hostileRow {
	notify := D.Add(-softwareupdate.NotifyWindow)
	return []hostileRow{
		{name: "ok", share: 350, want: wantCompliant},
		{name: "reboots-mid-update", share: 100, want: wantCompliant,
			setup: func(h *hostile, m *hostileMac) { m.dev.RestartMidUpdate(1) }},
		{name: "errors-for-two-days", share: 100, want: wantCompliant,
			setup: func(h *hostile, m *hostileMac) {
				m.dev.AnswerErrorUntil("ScheduleOSUpdate", notify.Add(48*time.Hour), apple12021)
			}},
		{name: "notnow-for-a-week", share: 100, want: wantCompliant,
			setup: func(h *hostile, m *hostileMac) { m.dev.AnswerNotNowUntil("ScheduleOSUpdate", D.Add(-24*time.Hour)) }},
		{name: "start-now-does-not-install", share: 100, want: wantCompliant,
			setup: func(h *hostile, m *hostileMac) { m.dev.IgnoreInstallASAP(maxForced) }},
		{name: "offline-across-the-deadline", share: 100, want: wantCompliant},
		{name: "always-errors", share: 50, want: wantFailed, reason: "MCMDMErrorDomain 12021: Software update unavailable",
			setup: func(h *hostile, m *hostileMac) {
				m.dev.AnswerErrorUntil("ScheduleOSUpdate", D.Add(30*24*time.Hour), apple12021)
			}},
		// Fails like always-errors until an admin fixes the cause at the
		// last deadline and retries it (scheduler.Retries): a fresh round
		// of install attempts.
		{name: "fixed-by-admin", share: 50, want: wantCompliant, forcedBound: 2 * maxForced,
			setup: func(h *hostile, m *hostileMac) {
				m.dev.AnswerErrorUntil("ScheduleOSUpdate", D.Add(30*24*time.Hour), apple12021)
			}},
		// Apple lets no MDM manage an unsupervised Mac's updates: with
		// esc-a's eligibility state it is ineligible with its reason, not
		// failed.
		// An Apple silicon Mac whose update needs a bootstrap token
		// (RequiresBootstrapToken in AvailableOSUpdates) and has none
		// escrowed cannot authorize the install: flagged before the
		// deadline, and still flagged, with the reason, afterwards.
		{name: "no-bootstrap-token", share: 50, want: wantNeedsBootstrap, reason: "InstallForceRestart: InstallFailed", noBootstrap: true,
			setup: func(h *hostile, m *hostileMac) { m.dev.SetUpdateFailure("InstallFailed") }},
		{name: "unsupervised", share: 50, want: wantIneligible, reason: "not supervised", opts: []mdmtest.Option{mdmtest.WithSupervised(false)}},
	}
}

// hostileOS: the macOS versions of the fleet and the targets a manual
// policy for 15.2 without major upgrades gives them.
var hostileOS = []struct{ version, build, target, targetBuild string }{
	{"12.7.4", "21H1123", "12.7.6", "21H1320"},
	{"13.6.7", "22G720", "13.7.1", "22H221"},
	{"14.6", "23G80", "14.6.1", "23G93"},
	{"15.1", "24B83", "15.2", "24C101"},
}

func hostileCatalog(t testing.TB) *catalog.Catalog {
	var rels []catalog.Release
	for i, o := range hostileOS {
		for _, vb := range [][2]string{{o.version, o.build}, {o.target, o.targetBuild}} {
			rels = append(rels, catalog.Release{Version: catalog.MustParseVersion(vb[0]), Build: vb[1],
				PostingDate: time.Date(2025, time.Month(1+i), 1+len(rels), 0, 0, 0, 0, time.UTC), SupportedDevices: []string{"J413AP", "J493AP"}})
		}
	}
	c, err := catalog.New(rels...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestHostileFleet(t *testing.T) {
	n := hostileFleet
	if testing.Short() || raceDetector {
		n /= 10
	}
	ctx := t.Context()
	start := time.Now()
	t0 := time.Now().UTC().Truncate(time.Hour)
	y, mo, d := t0.Date()
	// pilot: 17:00 UTC on day 10; broad: 09:00 New York on day 11.
	day := time.Date(y, mo, d+10, 0, 0, 0, 0, time.UTC)
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip("no time zone data:", err)
	}
	deadlines := map[string]time.Time{
		"pilot": day.Add(17 * time.Hour),
		"broad": time.Date(y, mo, d+11, 9, 0, 0, 0, ny).UTC(),
	}
	h := &hostile{t: t, clk: clock.NewFake(t0), byID: map[string]*hostileMac{}, notified: map[string]bool{}, busy: map[string]time.Time{}, enforce: map[string]time.Time{}}
	h.s = newStack(t, h.clk, hostileCatalog(t))
	h.s.notifier = h
	h.s.restart()
	for g, D := range deadlines {
		h.enforce[g] = D.Add(softwareupdate.CountdownWindow)
		if _, err := h.s.mgr.CreateGroup(ctx, "admin@example.com", g, g); err != nil {
			t.Fatal(err)
		}
		zone, tod := "UTC", "17:00"
		if g == "broad" {
			zone, tod = "America/New_York", "09:00"
		}
		if _, err := h.s.mgr.SetPolicy(ctx, "admin@example.com", g, softwareupdate.Policy{
			Mode: softwareupdate.ModeManual, MinimumVersion: "15.2", Date: D.In(mustZone(t, zone)).Format(time.DateOnly), TimeOfDay: tod, TimeZone: zone,
		}); err != nil {
			t.Fatal(err)
		}
	}
	D := deadlines["pilot"]
	last := deadlines["broad"]
	rows := hostileRows(D)

	// Enroll the fleet, a few at a time.
	type plan struct {
		row   *hostileRow
		group string
		os    int
	}
	var plans []plan
	for i := range rows {
		for j := range rows[i].share * n / 1000 {
			plans = append(plans, plan{row: &rows[i], group: []string{"pilot", "broad"}[j%2], os: j % len(hostileOS)})
		}
	}
	h.macs = make([]*hostileMac, len(plans))
	h.parallel(len(plans), func(i int) {
		p := plans[i]
		o := hostileOS[p.os]
		m := &hostileMac{name: fmt.Sprintf("%s-%03d", p.row.name, i), row: p.row, group: p.group, target: o.target, forced: map[string]time.Time{}}
		hw := hwAir
		if i%2 == 1 {
			hw = hwPro
		}
		// Signature reuse: each distinct body is signed once per Mac (see
		// mdmtest.WithSignatureReuse); the server checks each as usual.
		opts := []mdmtest.Option{mdmtest.WithKeyPool(testKeys(t)), mdmtest.WithHTTPClient(h.s.srv.Client()), mdmtest.WithClock(h.clk), mdmtest.WithSignatureReuse(),
			mdmtest.WithSupervised(true), mdmtest.WithHardware(hw), mdmtest.WithOS(o.version, o.build),
			mdmtest.WithCatalog(mdmtest.MinorUpdate(o.target, o.targetBuild)),
			mdmtest.WithHandler("ScheduleOSUpdate", m.record(h.clk))}
		dev, err := mdmtest.New(append(opts, p.row.opts...)...)
		if err != nil {
			t.Error(err)
			return
		}
		m.dev = dev
		if err := dev.Enroll(ctx, h.s.srv.Client(), h.s.srv.URL+"/mdm/enroll"); err != nil {
			t.Error(err)
			return
		}
		if !p.row.noBootstrap {
			if err := dev.SetBootstrapToken(ctx); err != nil {
				t.Error(err)
				return
			}
		}
		dev.SetScanDuration(3 * time.Minute) // every scan runs in the background
		h.macs[i] = m
	})
	if t.Failed() {
		t.FailNow()
	}
	groups := map[string][]string{}
	for _, m := range h.macs {
		h.byID[m.dev.UDID] = m
		groups[m.group] = append(groups[m.group], m.dev.UDID)
		if m.row.setup != nil {
			m.row.setup(h, m)
		}
		h.notified[m.dev.UDID] = true // the inventory queued at enrolment
	}
	for g, ids := range groups {
		if err := h.s.mgr.AssignDevices(ctx, "admin@example.com", g, ids); err != nil {
			t.Fatal(err)
		}
	}
	enrolled := time.Since(start)

	// The timeline: enrolment, the list after the scan, then every hour
	// from the notice window to the last deadline + 2 h.
	notify := D.Add(-softwareupdate.NotifyWindow)
	times := []time.Time{t0, t0.Add(10 * time.Minute), t0.Add(20 * time.Minute)}
	for at := notify; !at.After(last.Add(2 * time.Hour)); at = at.Add(time.Hour) {
		times = append(times, at)
	}
	events := map[time.Time]func(){
		notify.Add(24 * time.Hour): func() { // users press Start Now
			for _, m := range h.macs {
				if m.row.name == "start-now-does-not-install" {
					if _, err := h.s.sched.StartNow(ctx, m.dev.UDID); err != nil {
						t.Fatal(err)
					}
				}
			}
		},
		D.Add(-48 * time.Hour): func() { h.offline(true) },
		last: func() { // the admin fixed the cause: retry now
			retries := scheduler.NewRetries(h.s.sched, h.s.store, h.clk)
			for _, m := range h.macs {
				if m.row.name == "fixed-by-admin" {
					m.dev.AnswerErrorUntil("ScheduleOSUpdate", time.Time{}) // an instant past: answers again
					if _, err := retries.RetryDevice(ctx, "admin@example.com", m.dev.UDID); err != nil {
						t.Fatal(err)
					}
				}
			}
		},
		last.Add(time.Hour): func() { h.offline(false) },
	}
	// An hour before each deadline, every Mac without a bootstrap token is
	// already flagged (issue 20: "before its deadline, not after").
	for g, dl := range deadlines {
		at := dl.Add(-time.Hour)
		prev := events[at]
		events[at] = func() {
			if prev != nil {
				prev()
			}
			h.settle()
			h.checkBootstrapFlagged(g)
		}
	}
	for _, at := range times {
		h.clk.Set(at)
		if ev := events[at]; ev != nil {
			ev()
		}
		h.settle()
	}
	ran := time.Since(start)

	// The verdict at the last deadline + 2 h.
	ids := make([]string, len(h.macs))
	for i, m := range h.macs {
		ids[i] = m.dev.UDID
	}
	sts, err := h.s.store.States(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	phases := map[softwareupdate.Phase]int{}
	statuses := map[string]int{}
	outcomes := map[string]map[string]int{}
	var bad []string
	for i, m := range h.macs {
		st := sts[i]
		if st == nil {
			t.Fatalf("%s has no update state", m.name)
		}
		phases[st.Phase]++
		statuses[scheduler.Status(st)]++
		got := string(st.Phase)
		if outcomes[m.row.name] == nil {
			outcomes[m.row.name] = map[string]int{}
		}
		outcomes[m.row.name][got]++
		switch m.row.want {
		case wantCompliant:
			if st.Phase != softwareupdate.PhaseCompliant || m.dev.OSVersion() != m.target {
				bad = append(bad, fmt.Sprintf("%s: %s (%s) on %s, want compliant on %s", m.name, st.Phase, st.Reason, m.dev.OSVersion(), m.target))
			}
		case wantFailed:
			if st.Phase != softwareupdate.PhaseFailed || !strings.Contains(st.Reason, m.row.reason) {
				bad = append(bad, fmt.Sprintf("%s: %s (%s), want failed with %q", m.name, st.Phase, st.Reason, m.row.reason))
			}
		case wantNeedsBootstrap:
			if scheduler.Status(st) != scheduler.StatusNeedsBootstrapToken || st.Phase != softwareupdate.PhaseFailed || !strings.Contains(st.Reason, m.row.reason) {
				bad = append(bad, fmt.Sprintf("%s: %s/%s (%s), want needs-bootstrap-token with %q", m.name, st.Phase, scheduler.Status(st), st.Reason, m.row.reason))
			}
		case wantIneligible:
			if st.Phase != softwareupdate.PhaseIneligible || !strings.Contains(st.Reason, m.row.reason) || st.Failure != "" {
				bad = append(bad, fmt.Sprintf("%s: %s (%s, failure %q), want ineligible with %q", m.name, st.Phase, st.Reason, st.Failure, m.row.reason))
			}
		}
		m.mu.Lock()
		bound := maxForced
		if m.row.forcedBound > 0 {
			bound = m.row.forcedBound
		}
		if len(m.forced) > bound {
			bad = append(bad, fmt.Sprintf("%s: %d forced installs, bound %d", m.name, len(m.forced), bound))
		}
		if m.row.want == wantIneligible && len(m.forced) > 0 {
			bad = append(bad, fmt.Sprintf("%s: ineligible but sent %d forced installs", m.name, len(m.forced)))
		}
		for _, at := range m.forced {
			if at.Before(h.enforce[m.group]) {
				bad = append(bad, fmt.Sprintf("%s: forced install at %v, before its deadline's enforce phase %v", m.name, at, h.enforce[m.group]))
			}
		}
		m.mu.Unlock()
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		if len(bad) > 20 {
			bad = append(bad[:20], fmt.Sprintf("... and %d more", len(bad)-20))
		}
		t.Errorf("%d Macs not where they must be:\n%s\noutcomes by behaviour: %v", len(bad), strings.Join(bad, "\n"), outcomes)
		for _, m := range h.macs {
			if st := state(t, h.s, &mac{name: m.name, dev: m.dev}); (m.row.want == wantCompliant) != (st.Phase == softwareupdate.PhaseCompliant) {
				t.Logf("first wrong Mac %s history:\n%s", m.name, history(t, h.s, &mac{name: m.name, dev: m.dev}))
				break
			}
		}
	}
	rep, err := scheduler.NewReporter(h.s.store, h.s.store, h.s.cat, h.clk).Compliance(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Devices != len(h.macs) || rep.Compliant != phases[softwareupdate.PhaseCompliant] {
		t.Errorf("report: %d devices, %d compliant; states: %d devices, %v", rep.Devices, rep.Compliant, len(h.macs), phases)
	}
	for ph, c := range phases {
		if rep.ByPhase[ph] != c {
			t.Errorf("report counts %d %s, states %d", rep.ByPhase[ph], ph, c)
		}
	}
	for stat, c := range statuses {
		if rep.ByStatus[stat] != c {
			t.Errorf("report counts %d %s, statuses %d", rep.ByStatus[stat], stat, c)
		}
	}
	if len(rep.Ineligible) != phases[softwareupdate.PhaseIneligible] {
		t.Errorf("report lists %d ineligible Macs, states %d", len(rep.Ineligible), phases[softwareupdate.PhaseIneligible])
	}
	for _, b := range rep.Ineligible {
		if m := h.byID[b.DeviceID]; m == nil || m.row.want != wantIneligible || !strings.Contains(b.Reason, m.row.reason) {
			t.Errorf("report lists %s as ineligible (%q)", b.DeviceID, b.Reason)
		}
	}
	if len(rep.NeedsBootstrapToken) != statuses[scheduler.StatusNeedsBootstrapToken] {
		t.Errorf("report lists %d Macs needing a bootstrap token, statuses %d", len(rep.NeedsBootstrapToken), statuses[scheduler.StatusNeedsBootstrapToken])
	}
	failed := 0
	for _, f := range rep.Failures {
		failed += f.Count
	}
	if failed != phases[softwareupdate.PhaseFailed] {
		t.Errorf("report failures %d (%+v), failed states %d", failed, rep.Failures, phases[softwareupdate.PhaseFailed])
	}
	t.Logf("%d Macs: enrolled in %v, timeline of %d steps (%d passes) in %v; outcomes %v",
		len(h.macs), enrolled.Round(time.Millisecond), len(times), h.passes, (ran - enrolled).Round(time.Millisecond), outcomes)
}

// checkBootstrapFlagged fails the test unless every Mac of group g without
// a bootstrap token shows needs-bootstrap-token now.
func (h *hostile) checkBootstrapFlagged(g string) {
	h.t.Helper()
	var ids []string
	var macs []*hostileMac
	for _, m := range h.macs {
		if m.group == g && m.row.noBootstrap {
			ids = append(ids, m.dev.UDID)
			macs = append(macs, m)
		}
	}
	if len(ids) == 0 {
		return
	}
	sts, err := h.s.store.States(h.t.Context(), ids)
	if err != nil {
		h.t.Fatal(err)
	}
	for i, st := range sts {
		if st == nil || scheduler.Status(st) != scheduler.StatusNeedsBootstrapToken {
			h.t.Errorf("%s at %v (before its deadline): %+v, want needs-bootstrap-token", macs[i].name, h.clk.Now(), st)
		}
	}
}

func mustZone(t testing.TB, name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// record notes the forced installs a Mac receives, then answers as usual.
func (m *hostileMac) record(clk *clock.Fake) mdmtest.Handler {
	return func(ctx context.Context, d *mdmtest.Device, cmd *mdmtest.Command) mdmtest.Result {
		var v struct {
			Command struct {
				Updates []struct{ InstallAction string }
			}
		}
		if err := cmd.Decode(&v); err == nil && len(v.Command.Updates) > 0 && v.Command.Updates[0].InstallAction == "InstallForceRestart" {
			m.mu.Lock()
			if _, ok := m.forced[cmd.CommandUUID]; !ok {
				m.forced[cmd.CommandUUID] = clk.Now()
			}
			m.mu.Unlock()
		}
		return d.Builtin(ctx, cmd)
	}
}

func (h *hostile) offline(off bool) {
	for _, m := range h.macs {
		if m.row.name == "offline-across-the-deadline" {
			m.dev.SetOffline(off)
			if !off {
				h.Notify(m.dev.UDID) // back: it checks in
			}
		}
	}
}

// settle runs passes and lets the woken Macs answer until nothing moves, as
// pushes and re-pushes of pending work would. A Mac that answered NotNow
// stays woken (the push service re-pushes devices with pending work).
func (h *hostile) settle() {
	h.t.Helper()
	h.nmu.Lock()
	for id, at := range h.busy {
		if !h.clk.Now().Before(at) {
			h.notified[id] = true
			delete(h.busy, id)
		}
	}
	h.nmu.Unlock()
	for round := 0; ; round++ {
		if _, err := h.s.sched.RunOnce(h.t.Context()); err != nil {
			h.t.Fatalf("pass at %v failed: %v", h.clk.Now(), err)
		}
		h.passes++
		h.nmu.Lock()
		var woken []*hostileMac
		for id := range h.notified {
			if m := h.byID[id]; m != nil && m.dev.Online() {
				woken = append(woken, m)
				delete(h.notified, id)
			}
		}
		h.nmu.Unlock()
		if len(woken) == 0 {
			return
		}
		if round > 20 {
			h.t.Fatalf("%v: Macs still busy after 20 rounds", h.clk.Now())
		}
		h.parallel(len(woken), func(i int) {
			m := woken[i]
			for range 10 {
				sess, err := m.dev.Connect(h.t.Context())
				if err != nil {
					h.t.Errorf("%s connect: %v", m.name, err)
					return
				}
				busy := false
				for _, c := range sess.Commands {
					busy = busy || c.Status == mdmtest.StatusNotNow
				}
				if busy {
					// The push service re-pushes pending work with backoff.
					h.nmu.Lock()
					h.busy[m.dev.UDID] = h.clk.Now().Add(rePush)
					h.nmu.Unlock()
					return
				}
				if !m.dev.Online() {
					// Restarting: it checks in again when it is back (and
					// the push service re-pushes pending work meanwhile).
					h.nmu.Lock()
					h.busy[m.dev.UDID] = h.clk.Now()
					h.nmu.Unlock()
					return
				}
				if len(sess.Commands) == 0 {
					return
				}
			}
		})
		if h.t.Failed() {
			h.t.FailNow()
		}
	}
}

// parallel runs fn(0..n-1) on a few goroutines.
func (h *hostile) parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}
