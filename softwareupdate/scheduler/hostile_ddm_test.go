package scheduler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/ddm"
	"github.com/sundial-mdm/sundial/mdm/mdmtest"
	"github.com/sundial-mdm/sundial/mdm/service"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/declarative"
	"github.com/sundial-mdm/sundial/softwareupdate/legacy"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// The hostile fleet's declarative half (issue 20, "Must show"): supervised
// macOS 14 and 15 Macs on the declarative path over the real HTTP stack
// (MDM check-in, DDM sync and status reports) on a fake clock. One group
// has a UTC deadline; the other uses device-local, and its Macs' agents
// report their zones only three days before the deadline, so the
// declaration is first built in the policy's fallback zone. Some Macs
// reject the enforcement declaration; some fail the enforced install. At
// the last deadline + 2 h: no pass failed; every Mac is compliant or failed
// with Apple's reason; every enforcement declaration a Mac held had its
// TargetLocalDateTime, read in the Mac's own zone, at or after its deadline
// and the Mac never held more than one distinct one; the compliance
// report's counts equal the per-device states.
//
// Cost: most of it is the simulated Macs' RSA signatures of check-in
// bodies; mdmtest.WithSignatureReuse signs each distinct body once per Mac.
// 100 Macs run under -race or -short, 1,000 otherwise.

type ddmRow struct {
	name   string
	share  int // Macs per 1,000
	group  string
	setup  func(d *mdmtest.Device)
	want   outcome
	reason string // for wantFailed: what the reason must say
}

type ddmMac struct {
	name   string
	row    *ddmRow
	dev    *mdmtest.Device
	zone   *time.Location // where the Mac is
	target string
	// tldts: the distinct TargetLocalDateTime values the Mac held.
	tldts map[string]bool
}

// ddmZones is what the agents have reported: the Macs' zones by UDID.
type ddmZones struct {
	mu sync.Mutex
	m  map[string]string
}

func (z *ddmZones) DeviceZone(_ context.Context, id string) string {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.m[id]
}

type ddmFleet struct {
	t        *testing.T
	clk      *clock.Fake
	s        *stack
	macs     []*ddmMac
	byID     map[string]*ddmMac
	nmu      sync.Mutex
	notified map[string]bool
	passes   int
}

// Notify implements scheduler.Notifier and service.Notifier: the push.
func (f *ddmFleet) Notify(ids ...string) {
	f.nmu.Lock()
	defer f.nmu.Unlock()
	for _, id := range ids {
		f.notified[id] = true
	}
}

// useDeclarative rewires s (same bbolt file, same listener) as
// cmd/sundial's server does: the DDM service behind check-in, the
// declarative enforcer beside the legacy one, and the status observer.
func (s *stack) useDeclarative(zones *ddmZones, n *ddmFleet) {
	t := s.t
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	var svc *service.Service
	enqueue := enqueueFunc(func(ctx context.Context, ids []string, cmd *mdm.Command) error { return svc.Enqueue(ctx, ids, cmd) })
	observer := &declarative.Observer{Enq: enqueue, Log: log}
	dm := ddm.New(s.store, enqueue, s.clk, ddm.WithLogger(log), ddm.WithObserver(observer))
	s.sched = scheduler.New(s.store, s.store, s.cat, s.clk, scheduler.WithLogger(log), scheduler.WithNotifier(n), scheduler.WithZones(zones),
		scheduler.WithEnforcer(softwareupdate.PathLegacy, legacy.New(legacy.Config{})),
		scheduler.WithEnforcer(softwareupdate.PathDeclarative, declarative.New(dm, zones, log)))
	observer.Sched = s.sched
	s.mgr = scheduler.NewManager(s.store, s.cat, s.clk, s.sched)
	svc = service.New(s.store, s.clk, s.sealer, append(s.sched.ServiceOptions(), service.WithLogger(log), service.WithNotifier(n),
		service.WithDeclarative(dm), service.WithCheckinHook(dm))...)
	s.route(svc, log)
}

type enqueueFunc func(ctx context.Context, ids []string, cmd *mdm.Command) error

func (f enqueueFunc) Enqueue(ctx context.Context, ids []string, cmd *mdm.Command) error {
	return f(ctx, ids, cmd)
}

var ddmOS = []struct{ version, build, target, targetBuild string }{
	{"14.6", "23G80", "14.6.1", "23G93"},
	{"15.1", "24B83", "15.2", "24C101"},
}

func TestHostileDeclarativeFleet(t *testing.T) {
	n := hostileFleet
	if testing.Short() || raceDetector {
		n /= 10
	}
	ctx := t.Context()
	start := time.Now()
	t0 := time.Now().UTC().Truncate(time.Hour)
	y, mo, d := t0.Date()
	fallback, tokyo, berlin := mustZone(t, "America/New_York"), mustZone(t, "Asia/Tokyo"), mustZone(t, "Europe/Berlin")
	// "ddm": 17:00 UTC on day 10. "local": 12:00 on day 11 in each Mac's zone.
	dUTC := time.Date(y, mo, d+10, 17, 0, 0, 0, time.UTC)
	localDay := time.Date(y, mo, d+11, 0, 0, 0, 0, time.UTC)
	localAt := func(loc *time.Location) time.Time { return time.Date(y, mo, d+11, 12, 0, 0, 0, loc) }
	reported := localAt(tokyo).Add(-72 * time.Hour) // when the late agents report zones
	last := localAt(fallback)                       // the westernmost Mac's deadline

	rows := []ddmRow{
		{name: "ok", share: 400, group: "ddm", want: wantCompliant},
		{name: "local-late-zone", share: 400, group: "local", want: wantCompliant},
		{name: "rejects-declaration", share: 100, group: "ddm", want: wantFailed, reason: "Error.ConfigurationCannotBeApplied",
			setup: func(d *mdmtest.Device) {
				d.SetDeclarationFailure(ddm.TypeEnforcementSpecific, "Error.ConfigurationCannotBeApplied")
			}},
		{name: "install-fails", share: 100, group: "local", want: wantFailed, reason: "DownloadInsufficientSpace",
			setup: func(d *mdmtest.Device) { d.SetEnforcedInstallFailure("DownloadInsufficientSpace") }},
	}
	f := &ddmFleet{t: t, clk: clock.NewFake(t0), byID: map[string]*ddmMac{}, notified: map[string]bool{}}
	zones := &ddmZones{m: map[string]string{}}
	f.s = newStack(t, f.clk, hostileCatalog(t))
	f.s.useDeclarative(zones, f)
	if _, err := f.s.mgr.CreateGroup(ctx, "admin@example.com", "ddm", "ddm"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.mgr.CreateGroup(ctx, "admin@example.com", "local", "local"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.mgr.SetPolicy(ctx, "admin@example.com", "ddm", softwareupdate.Policy{
		Mode: softwareupdate.ModeManual, MinimumVersion: "15.2", Date: dUTC.Format(time.DateOnly), TimeOfDay: "17:00", TimeZone: "UTC"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.mgr.SetPolicy(ctx, "admin@example.com", "local", softwareupdate.Policy{
		Mode: softwareupdate.ModeManual, MinimumVersion: "15.2", Date: localDay.Format(time.DateOnly), TimeOfDay: "12:00",
		TimeZone: softwareupdate.DeviceLocal, FallbackTimeZone: fallback.String()}); err != nil {
		t.Fatal(err)
	}

	type plan struct {
		row *ddmRow
		os  int
	}
	var plans []plan
	for i := range rows {
		for j := range rows[i].share * n / 1000 {
			plans = append(plans, plan{row: &rows[i], os: j % len(ddmOS)})
		}
	}
	f.macs = make([]*ddmMac, len(plans))
	h := &hostile{} // for parallel
	h.parallel(len(plans), func(i int) {
		p := plans[i]
		o := ddmOS[p.os]
		m := &ddmMac{name: fmt.Sprintf("%s-%03d", p.row.name, i), row: p.row, target: o.target, zone: time.UTC, tldts: map[string]bool{}}
		if p.row.group == "local" {
			m.zone = []*time.Location{tokyo, berlin, fallback}[i%3]
		}
		hw := hwAir
		if i%2 == 1 {
			hw = hwPro
		}
		dev, err := mdmtest.New(mdmtest.WithKeyPool(testKeys(t)), mdmtest.WithHTTPClient(f.s.srv.Client()), mdmtest.WithClock(f.clk),
			mdmtest.WithSignatureReuse(), mdmtest.WithSupervised(true), mdmtest.WithHardware(hw), mdmtest.WithOS(o.version, o.build),
			mdmtest.WithTimeZone(m.zone), mdmtest.WithCatalog(mdmtest.MinorUpdate(o.target, o.targetBuild)))
		if err != nil {
			t.Error(err)
			return
		}
		m.dev = dev
		if err := dev.Enroll(ctx, f.s.srv.Client(), f.s.srv.URL+"/mdm/enroll"); err != nil {
			t.Error(err)
			return
		}
		if err := dev.SetBootstrapToken(ctx); err != nil {
			t.Error(err)
			return
		}
		f.macs[i] = m
	})
	if t.Failed() {
		t.FailNow()
	}
	groups := map[string][]string{}
	for _, m := range f.macs {
		f.byID[m.dev.UDID] = m
		groups[m.row.group] = append(groups[m.row.group], m.dev.UDID)
		if m.row.setup != nil {
			m.row.setup(m.dev)
		}
		f.notified[m.dev.UDID] = true // the inventory queued at enrolment
	}
	for g, ids := range groups {
		if err := f.s.mgr.AssignDevices(ctx, "admin@example.com", g, ids); err != nil {
			t.Fatal(err)
		}
	}
	enrolled := time.Since(start)

	notify := dUTC.Add(-softwareupdate.NotifyWindow)
	times := []time.Time{t0, t0.Add(10 * time.Minute), t0.Add(20 * time.Minute)}
	for at := notify; !at.After(last.Add(2 * time.Hour)); at = at.Add(time.Hour) {
		times = append(times, at)
	}
	checked := 0
	for _, at := range times {
		f.clk.Set(at)
		if at.Equal(reported) { // the late agents report their Macs' zones
			zones.mu.Lock()
			for _, m := range f.macs {
				if m.row.group == "local" {
					zones.m[m.dev.UDID] = m.zone.String()
				}
			}
			zones.mu.Unlock()
			// As cmd/sundial's agent API zone observer does.
			for _, m := range f.macs {
				if m.row.group == "local" {
					f.s.sched.Touch(m.dev.UDID)
				}
			}
		}
		f.settle(!at.Before(dUTC))
		// The local group's deadlines: the fallback zone's noon until the
		// agents report, then noon in each Mac's own zone.
		switch {
		case at.Equal(reported.Add(-time.Hour)):
			f.checkDeadlines(func(*ddmMac) time.Time { return localAt(fallback) })
			checked++
		case at.Equal(reported.Add(time.Hour)):
			f.checkDeadlines(func(m *ddmMac) time.Time { return localAt(m.zone) })
			checked++
		}
	}
	if checked != 2 {
		t.Fatalf("the timeline checked the local deadlines %d times, want before and after the zones are reported", checked)
	}
	ran := time.Since(start)

	ids := make([]string, len(f.macs))
	for i, m := range f.macs {
		ids[i] = m.dev.UDID
	}
	sts, err := f.s.store.States(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	phases := map[softwareupdate.Phase]int{}
	statuses := map[string]int{}
	outcomes := map[string]map[string]int{}
	var bad []string
	for i, m := range f.macs {
		st := sts[i]
		if st == nil {
			t.Fatalf("%s has no update state", m.name)
		}
		phases[st.Phase]++
		statuses[scheduler.Status(st)]++
		if outcomes[m.row.name] == nil {
			outcomes[m.row.name] = map[string]int{}
		}
		outcomes[m.row.name][string(st.Phase)]++
		if st.Path != softwareupdate.PathDeclarative {
			bad = append(bad, fmt.Sprintf("%s: path %q, want declarative", m.name, st.Path))
		}
		deadline := dUTC
		if m.row.group == "local" {
			deadline = localAt(m.zone)
		}
		switch m.row.want {
		case wantCompliant:
			if st.Phase != softwareupdate.PhaseCompliant || m.dev.OSVersion() != m.target {
				bad = append(bad, fmt.Sprintf("%s: %s (%s) on %s, want compliant on %s", m.name, st.Phase, st.Reason, m.dev.OSVersion(), m.target))
			}
			if len(m.tldts) != 1 {
				bad = append(bad, fmt.Sprintf("%s: held enforcement dates %v, want exactly one", m.name, m.tldts))
			}
		case wantFailed:
			if st.Phase != softwareupdate.PhaseFailed || !strings.Contains(st.Reason, m.row.reason) {
				bad = append(bad, fmt.Sprintf("%s: %s (%s), want failed with %q", m.name, st.Phase, st.Reason, m.row.reason))
			}
		}
		for tl := range m.tldts {
			at, err := time.ParseInLocation("2006-01-02T15:04:05", tl, m.zone)
			if err != nil || at.Before(deadline) {
				bad = append(bad, fmt.Sprintf("%s: enforcement at %q in %s, before its deadline %v (%v)", m.name, tl, m.zone, deadline, err))
			}
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		if len(bad) > 20 {
			bad = append(bad[:20], fmt.Sprintf("... and %d more", len(bad)-20))
		}
		t.Errorf("%d Macs not where they must be:\n%s\noutcomes by behaviour: %v", len(bad), strings.Join(bad, "\n"), outcomes)
	}
	rep, err := scheduler.NewReporter(f.s.store, f.s.store, f.s.cat, f.clk).Compliance(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Devices != len(f.macs) || rep.Compliant != phases[softwareupdate.PhaseCompliant] {
		t.Errorf("report: %d devices, %d compliant; states: %d devices, %v", rep.Devices, rep.Compliant, len(f.macs), phases)
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
	failed := 0
	for _, fl := range rep.Failures {
		failed += fl.Count
	}
	if failed != phases[softwareupdate.PhaseFailed] {
		t.Errorf("report failures %d (%+v), failed states %d", failed, rep.Failures, phases[softwareupdate.PhaseFailed])
	}
	t.Logf("%d Macs: enrolled in %v, timeline of %d steps (%d passes) in %v; outcomes %v",
		len(f.macs), enrolled.Round(time.Millisecond), len(times), f.passes, (ran - enrolled).Round(time.Millisecond), outcomes)
}

// checkDeadlines fails the test unless every Mac of the local group has the
// deadline want gives it now.
func (f *ddmFleet) checkDeadlines(want func(*ddmMac) time.Time) {
	f.t.Helper()
	var ids []string
	var macs []*ddmMac
	for _, m := range f.macs {
		if m.row.group == "local" {
			ids = append(ids, m.dev.UDID)
			macs = append(macs, m)
		}
	}
	sts, err := f.s.store.States(f.t.Context(), ids)
	if err != nil {
		f.t.Fatal(err)
	}
	for i, st := range sts {
		if st == nil || !st.Deadline.Equal(want(macs[i])) {
			f.t.Errorf("%s at %v: %+v, want deadline %v", macs[i].name, f.clk.Now(), st, want(macs[i]))
			return
		}
	}
}

// settle runs passes and lets the woken Macs connect until nothing moves.
// With reports, every Mac also sends a status report of what changed since
// its last (none is sent when nothing did), as a Mac installing an enforced
// update does unprompted.
func (f *ddmFleet) settle(reports bool) {
	f.t.Helper()
	if reports {
		h := &hostile{}
		h.parallel(len(f.macs), func(i int) {
			m := f.macs[i]
			sent, err := m.dev.SendDeclarativeStatus(f.t.Context(), false)
			if err != nil {
				f.t.Errorf("%s status: %v", m.name, err)
			}
			if sent {
				f.Notify(m.dev.UDID)
			}
		})
	}
	for round := 0; ; round++ {
		if _, err := f.s.sched.RunOnce(f.t.Context()); err != nil {
			f.t.Fatalf("pass at %v failed: %v", f.clk.Now(), err)
		}
		f.passes++
		f.nmu.Lock()
		var woken []*ddmMac
		for id := range f.notified {
			if m := f.byID[id]; m != nil {
				woken = append(woken, m)
				delete(f.notified, id)
			}
		}
		f.nmu.Unlock()
		if len(woken) == 0 {
			return
		}
		if round > 20 {
			f.t.Fatalf("%v: Macs still busy after 20 rounds", f.clk.Now())
		}
		h := &hostile{}
		h.parallel(len(woken), func(i int) {
			m := woken[i]
			for range 10 {
				sess, err := m.dev.Connect(f.t.Context())
				if err != nil {
					f.t.Errorf("%s connect: %v", m.name, err)
					return
				}
				m.noteEnforcement()
				if len(sess.Commands) == 0 {
					return
				}
			}
		})
		if f.t.Failed() {
			f.t.FailNow()
		}
	}
}

// noteEnforcement records the TargetLocalDateTime of the enforcement
// declaration the Mac holds, if any. Only the Mac's own goroutine calls it.
func (m *ddmMac) noteEnforcement() {
	for _, d := range m.dev.Declarations() {
		if d.Type != ddm.TypeEnforcementSpecific {
			continue
		}
		var p ddm.EnforcementPayload
		if json.Unmarshal(d.Payload, &p) == nil {
			m.tldts[p.TargetLocalDateTime] = true
		}
	}
}
