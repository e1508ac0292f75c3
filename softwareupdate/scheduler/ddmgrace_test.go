package scheduler_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/mdm/ddm"
	"github.com/sundial-mdm/sundial/mdm/mdmtest"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// graceFleet drives a few declarative Macs over the real HTTP stack on a
// fake clock, some of them offline, and checks every enforcement
// declaration a Mac takes in against the clock at that moment.
type graceFleet struct {
	*ddmFleet
	// held: per Mac, the TargetLocalDateTime values it held, in order.
	held map[string][]string
}

func newGraceFleet(t *testing.T, t0 time.Time, pol softwareupdate.Policy, names ...string) *graceFleet {
	t.Helper()
	ctx := t.Context()
	f := &graceFleet{ddmFleet: &ddmFleet{t: t, clk: clock.NewFake(t0), byID: map[string]*ddmMac{}, notified: map[string]bool{}},
		held: map[string][]string{}}
	f.s = newStack(t, f.clk, testCatalog(t))
	f.s.useDeclarative(&ddmZones{m: map[string]string{}}, f.ddmFleet)
	if _, err := f.s.mgr.SetPolicy(ctx, "admin@example.com", scheduler.DefaultGroupID, pol); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		dev, err := mdmtest.New(mdmtest.WithKeyPool(testKeys(t)), mdmtest.WithHTTPClient(f.s.srv.Client()), mdmtest.WithClock(f.clk),
			mdmtest.WithSupervised(true), mdmtest.WithHardware(hwAir), mdmtest.WithOS("15.1", "24B83"), mdmtest.WithTimeZone(time.UTC),
			mdmtest.WithCatalog(mdmtest.MinorUpdate("15.2", "24C101")))
		if err != nil {
			t.Fatal(err)
		}
		if err := dev.Enroll(ctx, f.s.srv.Client(), f.s.srv.URL+"/mdm/enroll"); err != nil {
			t.Fatal(err)
		}
		if err := dev.SetBootstrapToken(ctx); err != nil {
			t.Fatal(err)
		}
		m := &ddmMac{name: name, dev: dev, zone: time.UTC, target: "15.2", tldts: map[string]bool{}}
		f.macs = append(f.macs, m)
		f.byID[dev.UDID], f.notified[dev.UDID] = m, true
	}
	return f
}

func (f *graceFleet) mac(name string) *ddmMac {
	for _, m := range f.macs {
		if m.name == name {
			return m
		}
	}
	f.t.Fatalf("no Mac %s", name)
	return nil
}

// observe notes the enforcement declaration m holds now; one whose
// TargetLocalDateTime (in the Mac's zone, UTC here) has already passed
// when the Mac takes it in fails the test.
func (f *graceFleet) observe(m *ddmMac) {
	f.t.Helper()
	for _, d := range m.dev.Declarations() {
		if d.Type != ddm.TypeEnforcementSpecific {
			continue
		}
		var p ddm.EnforcementPayload
		if err := json.Unmarshal(d.Payload, &p); err != nil {
			f.t.Fatal(err)
		}
		h := f.held[m.name]
		if len(h) > 0 && h[len(h)-1] == p.TargetLocalDateTime {
			continue
		}
		f.held[m.name] = append(h, p.TargetLocalDateTime)
		at, err := time.ParseInLocation(ddm.LocalDateTimeLayout, p.TargetLocalDateTime, m.zone)
		if err != nil || !at.After(f.clk.Now()) {
			f.t.Errorf("%s took in a declaration for %s at %v: its time has passed (%v)", m.name, p.TargetLocalDateTime, f.clk.Now(), err)
		}
	}
}

// step sets the clock, runs passes and lets the online Macs that were
// pushed connect until nothing moves. With reports, every online Mac first
// sends a status report of what changed. Offline Macs keep their pushes
// for when they are back.
func (f *graceFleet) step(at time.Time, reports bool) {
	t := f.t
	t.Helper()
	f.clk.Set(at)
	ctx := t.Context()
	if reports {
		for _, m := range f.macs {
			if !m.dev.Online() {
				continue
			}
			sent, err := m.dev.SendDeclarativeStatus(ctx, false)
			if err != nil {
				t.Fatalf("%s status: %v", m.name, err)
			}
			if sent {
				f.Notify(m.dev.UDID)
			}
		}
	}
	for round := 0; ; round++ {
		if _, err := f.s.sched.RunOnce(ctx); err != nil {
			t.Fatalf("pass at %v: %v", at, err)
		}
		var woken []*ddmMac
		f.nmu.Lock()
		for id := range f.notified {
			if m := f.byID[id]; m != nil && m.dev.Online() {
				woken = append(woken, m)
				delete(f.notified, id)
			}
		}
		f.nmu.Unlock()
		if len(woken) == 0 {
			return
		}
		if round > 20 {
			t.Fatalf("%v: Macs still busy after 20 rounds", at)
		}
		for _, m := range woken {
			for range 10 {
				sess, err := m.dev.Connect(ctx)
				if err != nil {
					t.Fatalf("%s connect: %v", m.name, err)
				}
				f.observe(m)
				if len(sess.Commands) == 0 {
					break
				}
			}
		}
	}
}

func (f *graceFleet) report(name string) *scheduler.DeviceReport {
	f.t.Helper()
	rep, err := f.s.mgr.Device(f.t.Context(), f.mac(name).dev.UDID, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	return rep
}

func (f *graceFleet) enforcement(name string) *ddm.EnforcementState {
	f.t.Helper()
	r, err := f.s.store.DDMRecord(f.t.Context(), f.mac(name).dev.UDID)
	if err != nil {
		f.t.Fatal(err)
	}
	return r.Enforcement
}

// graceNotes returns the history entries about the offline grace.
func graceNotes(h []scheduler.Transition) []string {
	return historyReasons(h, func(x scheduler.Transition) bool {
		return strings.Contains(x.Reason, "offline at its deadline") || strings.Contains(x.Reason, "back after its deadline")
	})
}

// TestDeclarativeOfflineGraceTimeline (issue 23 item 4, declarative path),
// over the real HTTP stack with DDM on a fake clock. away (macOS 15.1) is
// offline from before its notice until 2 days after its deadline D; held
// fetched its declaration at notice and then went offline across D.
// At D, away's declaration, never fetched, is withdrawn; held's is kept
// (macOS enforces it on its own clock). away wakes and syncs by itself
// first: no enforcement declaration. Its first connection answers the
// inventory queued at the withdrawal, and only then does it get a fresh
// declaration, for wake + 4 h. No Mac ever takes in a declaration whose
// time has passed; both end on 15.2; away's history has both grace
// entries and its agent counts down to the grace's end.
func TestDeclarativeOfflineGraceTimeline(t *testing.T) {
	ctx := t.Context()
	// The simulated Macs' certificates follow the real clock: start at the real hour.
	t0 := time.Now().UTC().Truncate(time.Hour)
	y, mo, d := t0.Date()
	D := time.Date(y, mo, d+10, 17, 0, 0, 0, time.UTC)
	f := newGraceFleet(t, t0, softwareupdate.Policy{Mode: softwareupdate.ModeManual, MinimumVersion: "15.2",
		Date: D.Format(time.DateOnly), TimeOfDay: "17:00", TimeZone: "UTC"}, "away", "held")
	away, held := f.mac("away"), f.mac("held")

	f.step(t0, false)
	f.step(t0.Add(10*time.Minute), false)
	away.dev.SetOffline(true)
	notice := D.Add(-softwareupdate.NotifyWindow)
	f.step(notice, false)
	if e := f.enforcement("held"); e == nil || e.FetchedAt.IsZero() {
		t.Fatalf("held at notice: enforcement %+v, want fetched", e)
	}
	if e := f.enforcement("away"); e == nil || !e.FetchedAt.IsZero() {
		t.Fatalf("away at notice: enforcement %+v, want set and not fetched", e)
	}
	f.step(notice.Add(time.Hour), false)
	held.dev.SetOffline(true)

	for at := D.Add(-time.Hour); at.Before(D.Add(48 * time.Hour)); at = at.Add(time.Hour) {
		f.step(at, false)
		if at.Equal(D) {
			if e := f.enforcement("away"); e != nil {
				t.Fatalf("away at its deadline: enforcement %+v, want withdrawn", e)
			}
			if e := f.enforcement("held"); e == nil || e.Payload.TargetLocalDateTime != ddm.TargetLocalDateTime(D, time.UTC) {
				t.Fatalf("held at its deadline: enforcement %+v, want its declaration kept", e)
			}
		}
	}
	if n := graceNotes(f.report("held").History); len(n) != 0 {
		t.Errorf("held's history: %q, want no offline grace", n)
	}

	// away wakes 2 days after D; macOS syncs by itself before the push.
	wake := D.Add(48 * time.Hour)
	f.clk.Set(wake)
	away.dev.SetOffline(false)
	if err := away.dev.SyncDeclarations(ctx, ""); err != nil {
		t.Fatal(err)
	}
	f.observe(away)
	if len(f.held["away"]) != 0 {
		t.Fatalf("away's own sync on waking got %v, want no enforcement declaration", f.held["away"])
	}
	f.step(wake, false)
	graceEnd := wake.Add(scheduler.DefaultOfflineGrace)
	if want := []string{graceEnd.Format(ddm.LocalDateTimeLayout)}; !slices.Equal(f.held["away"], want) {
		t.Fatalf("away after waking held %v, want %v", f.held["away"], want)
	}
	rep := f.report("away")
	if st := rep.State; !st.GraceUntil.Equal(graceEnd) || !st.AgentDeadline().Equal(graceEnd.Add(-softwareupdate.CountdownWindow)) {
		t.Fatalf("away: grace until %v, agent deadline %v; want %v", st.GraceUntil, st.AgentDeadline(), graceEnd)
	}
	if n := graceNotes(rep.History); len(n) != 2 || !strings.Contains(n[0], "offline at its deadline") ||
		!strings.Contains(n[1], "offline grace until "+graceEnd.Format(time.RFC3339)) {
		t.Errorf("away's history records the grace as %q", n)
	}
	if away.dev.OSVersion() != "15.1" {
		t.Fatalf("away installed %s on waking", away.dev.OSVersion())
	}

	held.dev.SetOffline(false)
	for at := wake.Add(time.Hour); !at.After(graceEnd.Add(2 * time.Hour)); at = at.Add(30 * time.Minute) {
		f.step(at, true)
		if at.Before(graceEnd) && away.dev.OSVersion() != "15.1" {
			t.Fatalf("away installed %s at %v, before its grace ended at %v", away.dev.OSVersion(), at, graceEnd)
		}
	}
	for _, m := range f.macs {
		if st := f.report(m.name).State; st.Phase != softwareupdate.PhaseCompliant || m.dev.OSVersion() != "15.2" {
			t.Errorf("%s: %s (%s) on %s, want compliant on 15.2", m.name, st.Phase, st.Reason, m.dev.OSVersion())
		}
	}
	if want := []string{ddm.TargetLocalDateTime(D, time.UTC)}; !slices.Equal(f.held["held"], want) {
		t.Errorf("held took in %v, want only its original %v", f.held["held"], want)
	}
	if want := []string{graceEnd.Format(ddm.LocalDateTimeLayout)}; !slices.Equal(f.held["away"], want) {
		t.Errorf("away took in %v, want only %v", f.held["away"], want)
	}
}

// TestDeclarativeOfflineGraceCalendar: with a business calendar (every
// day 09:00-17:00), a Mac offline at its deadline that wakes at 15:00 two
// days later would end its 4-hour grace at 19:00, after working hours;
// its fresh declaration is for 09:00 the next day instead, and its
// history says why.
func TestDeclarativeOfflineGraceCalendar(t *testing.T) {
	ctx := t.Context()
	t0 := time.Now().UTC().Truncate(time.Hour)
	y, mo, d := t0.Date()
	D := time.Date(y, mo, d+10, 12, 0, 0, 0, time.UTC)
	f := newGraceFleet(t, t0, softwareupdate.Policy{Mode: softwareupdate.ModeManual, MinimumVersion: "15.2",
		Date: D.Format(time.DateOnly), TimeOfDay: "12:00", TimeZone: "UTC",
		Calendar: &softwareupdate.Calendar{WorkingDays: "mon-sun", WorkingHours: "09:00-17:00"}}, "away")
	away := f.mac("away")
	f.step(t0, false)
	f.step(t0.Add(10*time.Minute), false)
	away.dev.SetOffline(true)
	f.step(D.Add(-softwareupdate.NotifyWindow), false)
	f.step(D, false)
	if e := f.enforcement("away"); e != nil {
		t.Fatalf("away at its deadline: enforcement %+v, want withdrawn", e)
	}
	wake := time.Date(y, mo, d+12, 15, 0, 0, 0, time.UTC)
	graceEnd := time.Date(y, mo, d+13, 9, 0, 0, 0, time.UTC)
	away.dev.SetOffline(false)
	f.step(wake, false)
	if want := []string{graceEnd.Format(ddm.LocalDateTimeLayout)}; !slices.Equal(f.held["away"], want) {
		t.Fatalf("away after waking held %v, want %v (19:00 is after working hours)", f.held["away"], want)
	}
	rep, err := f.s.mgr.Device(ctx, away.dev.UDID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n := graceNotes(rep.History); len(n) != 2 ||
		!strings.Contains(n[1], "offline grace until "+graceEnd.Format(time.RFC3339)+" (moved to working time: ") {
		t.Errorf("away's history records the grace as %q", n)
	}
	for at := wake.Add(time.Hour); !at.After(graceEnd.Add(time.Hour)); at = at.Add(time.Hour) {
		f.step(at, true)
		if at.Before(graceEnd) && away.dev.OSVersion() != "15.1" {
			t.Fatalf("away installed %s at %v, before its grace ended at %v", away.dev.OSVersion(), at, graceEnd)
		}
	}
	if st := f.report("away").State; st.Phase != softwareupdate.PhaseCompliant {
		t.Errorf("away: %s (%s), want compliant", st.Phase, st.Reason)
	}
}
