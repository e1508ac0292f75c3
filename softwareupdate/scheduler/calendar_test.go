package scheduler_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/mdmtest"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/declarative"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// historyReasons returns the reasons of the history entries keep accepts.
func historyReasons(h []scheduler.Transition, keep func(scheduler.Transition) bool) []string {
	var out []string
	for _, x := range h {
		if keep(x) {
			out = append(out, x.Reason)
		}
	}
	return out
}

// movedNotes returns the history entries that record a calendar move.
func movedNotes(h []scheduler.Transition) []string {
	return historyReasons(h, func(x scheduler.Transition) bool { return x.Kind == scheduler.EventMoved })
}

// TestCalendarHolidayOfflineTimeline (issue 23, "a holiday on the deadline
// of a Mac that was offline"), over the real HTTP stack on a fake clock:
// the policy's deadline (12:00 UTC on day D) falls on a company holiday,
// so both Macs' deadline moves to 09:00 on D+1, the next working time.
// desk stays online: nothing is forced at D + 30 min, its forced install
// comes at the moved deadline + 30 min. away is offline from before its
// notice until 15:00 on D+2; its offline grace (4 h) would end at 19:00,
// after working hours, so it ends at 09:00 on D+3 instead, when the forced
// install is sent. Both end compliant, and both histories say why.
func TestCalendarHolidayOfflineTimeline(t *testing.T) {
	ctx := t.Context()
	// The simulated Macs' SCEP certificates follow the real clock (see
	// TestTimeline): start the fake clock at the real hour; the policy and
	// its calendar are in UTC so the timeline is the same on every date.
	t0 := time.Now().UTC().Truncate(time.Hour)
	y, m, d := t0.Date()
	D := time.Date(y, m, d+10, 12, 0, 0, 0, time.UTC)
	moved := time.Date(y, m, d+11, 9, 0, 0, 0, time.UTC)
	clk := clock.NewFake(t0)
	s := newStack(t, clk, testCatalog(t))
	rec := &recorder{clk: clk}

	if _, err := s.mgr.SetPolicy(ctx, "admin@example.com", scheduler.DefaultGroupID, softwareupdate.Policy{
		Mode: softwareupdate.ModeManual, MinimumVersion: "15.2", Date: D.Format(time.DateOnly), TimeOfDay: "12:00", TimeZone: "UTC",
		Calendar: &softwareupdate.Calendar{WorkingDays: "mon-sun", WorkingHours: "09:00-17:00",
			Holidays: []softwareupdate.Holiday{{Date: D.Format(time.DateOnly), Name: "Founders' Day"}}},
	}); err != nil {
		t.Fatal(err)
	}
	opts := []mdmtest.Option{mdmtest.WithSupervised(true), mdmtest.WithHardware(hwAir), mdmtest.WithOS("15.1", "24B83"),
		mdmtest.WithCatalog(mdmtest.MinorUpdate("15.2", "24C101"))}
	desk := s.enroll(t, rec, "desk", opts...)
	away := s.enroll(t, rec, "away", opts...)
	macs := []*mac{desk, away}
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

	step(t0, w(t0, "away", "DeviceInformation"), w(t0, "away", "ScheduleOSUpdateScan"),
		w(t0, "desk", "DeviceInformation"), w(t0, "desk", "ScheduleOSUpdateScan"))
	list := t0.Add(10 * time.Minute)
	step(list, w(list, "away", "AvailableOSUpdates"), w(list, "desk", "AvailableOSUpdates"))
	why := D.Format("Mon 2006-01-02") + " 12:00 is a holiday (Founders' Day) → " + moved.Format("Mon 2006-01-02") + " 09:00 UTC"
	for _, x := range macs {
		if st := state(t, s, x); !st.Deadline.Equal(moved) || st.DeadlineMoved != why {
			t.Fatalf("%s: deadline %v (%q), want %v (%q)", x.name, st.Deadline, st.DeadlineMoved, moved, why)
		}
	}

	away.dev.SetOffline(true)
	step(moved.Add(-6 * 24 * time.Hour))
	notify := moved.Add(-softwareupdate.NotifyWindow)
	step(notify, w(notify, "desk", "ScheduleOSUpdate", "DownloadOnly/High"))
	poll := notify.Add(time.Hour)
	step(poll, w(poll, "desk", "OSUpdateStatus"))

	// The policy's own deadline and countdown pass on the holiday: nothing.
	step(D)
	step(D.Add(softwareupdate.CountdownWindow + time.Minute))
	wantPhase(t, s, desk, softwareupdate.PhaseNotify)
	step(moved)
	wantPhase(t, s, desk, softwareupdate.PhaseCountdown)
	enforce := moved.Add(softwareupdate.CountdownWindow)
	step(enforce, w(enforce, "desk", "ScheduleOSUpdate", "InstallForceRestart"))
	verify := enforce.Add(30 * time.Minute)
	step(verify, w(verify, "desk", "DeviceInformation"))
	wantPhase(t, s, desk, softwareupdate.PhaseCompliant)
	wantPhase(t, s, away, softwareupdate.PhaseEnforce)

	// away comes back at 15:00 the day after: the download first, and the
	// forced install when the grace ends in working time, not at 19:00.
	away.dev.SetOffline(false)
	back := time.Date(y, m, d+12, 15, 0, 0, 0, time.UTC)
	graceEnd := time.Date(y, m, d+13, 9, 0, 0, 0, time.UTC)
	step(back, w(back, "away", "ScheduleOSUpdate", "DownloadOnly/High"))
	if st := state(t, s, away); !st.GraceUntil.Equal(graceEnd) {
		t.Fatalf("away: grace until %v, want %v (19:00 is after working hours)", st.GraceUntil, graceEnd)
	}
	step(back.Add(time.Hour), w(back.Add(time.Hour), "away", "OSUpdateStatus"))
	step(back.Add(scheduler.DefaultOfflineGrace)) // 19:00: after hours, nothing
	step(graceEnd.Add(-time.Minute))
	step(graceEnd, w(graceEnd, "away", "ScheduleOSUpdate", "InstallForceRestart"))
	step(graceEnd.Add(30*time.Minute), w(graceEnd.Add(30*time.Minute), "away", "DeviceInformation"))
	wantPhase(t, s, away, softwareupdate.PhaseCompliant)

	rep, err := s.mgr.Device(ctx, away.dev.UDID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if notes := movedNotes(rep.History); len(notes) != 1 || !strings.Contains(notes[0], why) {
		t.Errorf("away's history records the move %q, want once: %q", notes, why)
	}
	graceNote := false
	for _, h := range rep.History {
		graceNote = graceNote || strings.Contains(h.Reason, "offline grace until "+graceEnd.Format(time.RFC3339)+" (moved to working time: ")
	}
	if !graceNote {
		t.Errorf("away's history does not explain the grace's end: %+v", rep.History)
	}
}

// TestCalendarDeclarativeMacZone, over the real HTTP stack with the
// declarative path: the policy says 17:00 UTC on day D, which is 02:00 on
// D+1 for a Mac in Tokyo, and D+1 is its office's holiday. The calendar is
// read in the Mac's zone (its agent reported Asia/Tokyo), so its deadline
// moves to 09:00 Tokyo time on D+2, and the enforcement declaration's
// TargetLocalDateTime is that moved deadline plus the countdown. The Mac
// does not install at the policy's time and is compliant after the moved one.
func TestCalendarDeclarativeMacZone(t *testing.T) {
	ctx := t.Context()
	t0 := time.Now().UTC().Truncate(time.Hour)
	y, mo, d := t0.Date()
	tokyo := mustZone(t, "Asia/Tokyo")
	D := time.Date(y, mo, d+10, 17, 0, 0, 0, time.UTC)
	holiday := D.In(tokyo).Format(time.DateOnly) // D+1 in Tokyo
	movedLocal := time.Date(y, mo, d+12, 9, 0, 0, 0, tokyo)

	f := &ddmFleet{t: t, clk: clock.NewFake(t0), byID: map[string]*ddmMac{}, notified: map[string]bool{}}
	zones := &ddmZones{m: map[string]string{}}
	f.s = newStack(t, f.clk, testCatalog(t))
	f.s.useDeclarative(zones, f)
	if _, err := f.s.mgr.SetPolicy(ctx, "admin@example.com", scheduler.DefaultGroupID, softwareupdate.Policy{
		Mode: softwareupdate.ModeManual, MinimumVersion: "15.2", Date: D.Format(time.DateOnly), TimeOfDay: "17:00", TimeZone: "UTC",
		Calendar: &softwareupdate.Calendar{WorkingDays: "mon-sun", Holidays: []softwareupdate.Holiday{{Date: holiday, Name: "Office closed"}}},
	}); err != nil {
		t.Fatal(err)
	}
	dev, err := mdmtest.New(mdmtest.WithKeyPool(testKeys(t)), mdmtest.WithHTTPClient(f.s.srv.Client()), mdmtest.WithClock(f.clk),
		mdmtest.WithSupervised(true), mdmtest.WithHardware(hwAir), mdmtest.WithOS("15.1", "24B83"), mdmtest.WithTimeZone(tokyo),
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
	m := &ddmMac{name: "tokyo", dev: dev, zone: tokyo, target: "15.2", tldts: map[string]bool{}}
	f.macs, f.byID[dev.UDID], f.notified[dev.UDID] = []*ddmMac{m}, m, true
	zones.m[dev.UDID] = "Asia/Tokyo" // the agent reported its zone

	for _, at := range []time.Time{t0, t0.Add(10 * time.Minute), movedLocal.Add(-softwareupdate.NotifyWindow)} {
		f.clk.Set(at)
		f.settle(false)
	}
	st := f.s.mgr
	rep, err := st.Device(ctx, dev.UDID, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := D.In(tokyo).Format("Mon 2006-01-02") + " 02:00 is a holiday (Office closed) → " + movedLocal.Format("Mon 2006-01-02") + " 09:00 Asia/Tokyo"
	if s := rep.State; s.Phase != softwareupdate.PhaseNotify || !s.Deadline.Equal(movedLocal) || s.DeadlineMoved != want {
		t.Fatalf("state: %s deadline %v (%q), want notify %v (%q)", s.Phase, s.Deadline, s.DeadlineMoved, movedLocal, want)
	}
	wantTLDT := movedLocal.Add(declarative.Countdown).Format("2006-01-02T15:04:05")
	if len(m.tldts) != 1 || !m.tldts[wantTLDT] {
		t.Fatalf("the Mac held TargetLocalDateTime %v, want only %s", m.tldts, wantTLDT)
	}
	// The policy's own time passes: the Mac does not install.
	f.clk.Set(D.Add(time.Hour))
	f.settle(true)
	if dev.OSVersion() != "15.1" {
		t.Fatalf("installed %s at the policy's time, before the moved deadline", dev.OSVersion())
	}
	for at := movedLocal; !at.After(movedLocal.Add(2 * time.Hour)); at = at.Add(30 * time.Minute) {
		f.clk.Set(at)
		f.settle(true)
	}
	if rep, err := st.Device(ctx, dev.UDID, 0); err != nil || rep.State.Phase != softwareupdate.PhaseCompliant || dev.OSVersion() != "15.2" {
		t.Fatalf("after the moved deadline: %+v %v on %s, want compliant on 15.2", rep.State, err, dev.OSVersion())
	}
}

// TestCalendarMacZoneUnit: the calendar is read in the zone each Mac's
// agent reported, else the policy's zone; the declaration carries the moved
// deadline (+ 30 min) in that zone.
func TestCalendarMacZoneUnit(t *testing.T) {
	ctx := t.Context()
	u := newUnit(t, utcAt(2026, 3, 2, 9, 0))
	f := &recordingDDM{}
	zones := agentZones{"tokyo": "Asia/Tokyo", "newyork": "America/New_York"}
	u.useStore(u.store, scheduler.WithZones(zones), scheduler.WithEnforcer(softwareupdate.PathDeclarative, declarative.New(f, zones, nil)))
	// Friday 2026-03-20 17:00 UTC; working time Mon-Fri 09:00-17:00.
	if _, err := u.mgr.SetPolicy(ctx, "admin", scheduler.DefaultGroupID, softwareupdate.Policy{Mode: softwareupdate.ModeManual,
		MinimumVersion: "15.2", Date: "2026-03-20", TimeOfDay: "17:00", TimeZone: "UTC", Calendar: &softwareupdate.Calendar{}}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"tokyo", "newyork", "nozone"} {
		u.addMac(id, "15.1", "J413AP", true)
	}
	u.pass()
	u.clk.Set(utcAt(2026, 3, 19, 12, 0))
	u.pass()
	for _, tc := range []struct {
		id, tldt, moved string
		deadline        time.Time
	}{
		{"tokyo", "2026-03-23T09:30:00", "Sat 2026-03-21 02:00 is not a working day (mon-fri) → Mon 2026-03-23 09:00 Asia/Tokyo", utcAt(2026, 3, 23, 0, 0)},
		{"newyork", "2026-03-20T13:30:00", "", utcAt(2026, 3, 20, 17, 0)}, // 13:00 EDT: working time
		{"nozone", "2026-03-23T09:30:00", "Fri 2026-03-20 17:00 is after working hours (09:00-17:00) → Mon 2026-03-23 09:00 UTC", utcAt(2026, 3, 23, 9, 0)},
	} {
		st := u.state(tc.id)
		if !st.Deadline.Equal(tc.deadline) || st.DeadlineMoved != tc.moved {
			t.Errorf("%s: deadline %v (%q), want %v (%q)", tc.id, st.Deadline, st.DeadlineMoved, tc.deadline, tc.moved)
		}
		if p := f.payload(t, tc.id); p.TargetLocalDateTime != tc.tldt {
			t.Errorf("%s: TargetLocalDateTime %s, want %s", tc.id, p.TargetLocalDateTime, tc.tldt)
		}
		if notes := movedNotes(u.history(tc.id)); len(notes) != min(1, len(tc.moved)) {
			t.Errorf("%s: history moves %q", tc.id, notes)
		}
	}
	// A later pass records nothing new.
	u.clk.Set(utcAt(2026, 3, 19, 13, 0))
	u.sched.Reevaluate()
	u.pass()
	if notes := movedNotes(u.history("tokyo")); len(notes) != 1 {
		t.Errorf("tokyo after a sweep: history moves %q, want one", notes)
	}
}

// TestCalendarResumeAndRingGate: deadlines computed afresh when a pause is
// lifted and when a ring gate opens are moved to working time too.
func TestCalendarResumeAndRingGate(t *testing.T) {
	ctx := t.Context()
	cal := &softwareupdate.Calendar{Holidays: []softwareupdate.Holiday{{Date: "2026-03-30", Name: "Test holiday"}}}
	t.Run("resume", func(t *testing.T) {
		u := newUnit(t, utcAt(2026, 3, 2, 9, 0))
		if _, err := u.mgr.SetPolicy(ctx, "admin", scheduler.DefaultGroupID, softwareupdate.Policy{Mode: softwareupdate.ModeManual,
			MinimumVersion: "15.2", Date: "2026-03-20", TimeOfDay: "16:00", TimeZone: "UTC", Calendar: cal}); err != nil {
			t.Fatal(err)
		}
		u.addMac("a", "15.1", "J413AP", true)
		u.pass()
		if st := u.state("a"); !st.Deadline.Equal(utcAt(2026, 3, 20, 16, 0)) || st.DeadlineMoved != "" {
			t.Fatalf("before the pause: deadline %v (%q), want the policy's, unmoved", st.Deadline, st.DeadlineMoved)
		}
		u.clk.Set(utcAt(2026, 3, 19, 10, 0))
		if _, err := u.mgr.Pause(ctx, "oncall", "", "bad build"); err != nil {
			t.Fatal(err)
		}
		u.pass()
		// Resumed Tuesday 18:00: fresh notice to the first 16:00 five days
		// on, Monday 2026-03-30, a holiday: Tuesday 09:00.
		u.clk.Set(utcAt(2026, 3, 24, 18, 0))
		if err := u.mgr.Resume(ctx, "oncall", ""); err != nil {
			t.Fatal(err)
		}
		u.pass()
		st := u.state("a")
		if want := utcAt(2026, 3, 31, 9, 0); !st.Deadline.Equal(want) || st.DeadlineMoved != "Mon 2026-03-30 16:00 is a holiday (Test holiday) → Tue 2026-03-31 09:00 UTC" {
			t.Fatalf("after resume: %s deadline %v (%q), want %v", st.Phase, st.Deadline, st.DeadlineMoved, want)
		}
		if notes := movedNotes(u.history("a")); len(notes) != 1 {
			t.Errorf("history moves %q, want one", notes)
		}
	})
	t.Run("ring gate", func(t *testing.T) {
		u := newUnit(t, utcAt(2026, 3, 2, 9, 0))
		u.ringFleet()
		for _, g := range []string{"pilot", "broad"} {
			if _, err := u.mgr.SetPolicy(ctx, "admin", g, softwareupdate.Policy{Mode: softwareupdate.ModeManual, MinimumVersion: "15.2",
				Date: "2026-03-20", TimeOfDay: "16:00", TimeZone: "UTC", Calendar: cal}); err != nil {
				t.Fatal(err)
			}
		}
		u.putRings(scheduler.RingPlan{ID: "macos", Groups: []string{"pilot", "broad"}})
		u.pass()
		if st := u.state("broad-1"); !st.Deadline.IsZero() || st.DeadlineMoved != "" || len(movedNotes(u.history("broad-1"))) != 0 {
			t.Fatalf("held broad-1: deadline %v (%q), want none", st.Deadline, st.DeadlineMoved)
		}
		for _, id := range []string{"pilot-1", "pilot-2"} {
			u.setInventory(id, mdm.Inventory{OSVersion: "15.2", SoftwareUpdateDeviceID: "J413AP", IsSupervised: true})
		}
		// The gate opens on Monday 2026-03-23 after 16:00: the first 16:00
		// five days on is at the weekend and Monday the 30th is a holiday,
		// so the deadline is Tuesday 09:00.
		u.clk.Set(utcAt(2026, 3, 23, 16, 30))
		u.pass()
		u.clk.Set(u.clk.Now().Add(scheduler.RingGateInterval))
		u.pass()
		st := u.state("broad-1")
		if want := utcAt(2026, 3, 31, 9, 0); strings.Contains(st.Reason, "held") || !st.Deadline.Equal(want) ||
			!strings.Contains(st.DeadlineMoved, "is not a working day (mon-fri) → Tue 2026-03-31 09:00 UTC") {
			t.Fatalf("broad-1 after the gate opened: %s deadline %v (%q), want %v", st.Phase, st.Deadline, st.DeadlineMoved, want)
		}
	})
}

// TestWhatIfExplainsCalendarMove: the what-if of a policy with a business
// calendar gives each Mac its moved deadline, in its own zone where its
// agent reported one, and says why.
func TestWhatIfExplainsCalendarMove(t *testing.T) {
	now := time.Date(2026, 12, 10, 12, 0, 0, 0, time.UTC)
	in := []scheduler.WhatIfInput{
		{DeviceID: "old", Facts: scheduler.Facts{OSVersion: "15.1", BoardID: "J413AP", Supervised: true, InventoryAt: now}},
		{DeviceID: "new", Facts: scheduler.Facts{OSVersion: "15.2", BoardID: "J413AP", Supervised: true, InventoryAt: now}},
		{DeviceID: "tokyo", Facts: scheduler.Facts{OSVersion: "15.1", BoardID: "J413AP", Supervised: true, InventoryAt: now, TimeZone: "Asia/Tokyo"}},
	}
	p := softwareupdate.Policy{Mode: softwareupdate.ModeManual, MinimumVersion: "15.2", Date: "2026-12-26", TimeOfDay: "12:00",
		TimeZone: "Europe/Berlin", Calendar: &softwareupdate.Calendar{Holidays: []softwareupdate.Holiday{{Date: "12-26", Name: "Boxing Day"}}}}
	res, err := scheduler.WhatIf(now, testCatalog(t), "g", p, in)
	if err != nil {
		t.Fatal(err)
	}
	want := "Sat 2026-12-26 12:00 is a holiday (Boxing Day) → Mon 2026-12-28 09:00 Europe/Berlin"
	if tk := res.Rows[2]; tk.DeviceID != "tokyo" || !tk.Deadline.Equal(time.Date(2026, 12, 28, 0, 0, 0, 0, time.UTC)) ||
		tk.DeadlineMoved != "Sat 2026-12-26 20:00 is a holiday (Boxing Day) → Mon 2026-12-28 09:00 Asia/Tokyo" {
		t.Errorf("what-if of the Tokyo Mac: %+v", tk)
	}
	if res.MovedByCalendar != 2 || res.Rows[1].DeviceID != "old" || res.Rows[1].DeadlineMoved != want ||
		!res.Rows[1].Deadline.Equal(time.Date(2026, 12, 28, 8, 0, 0, 0, time.UTC)) || res.Rows[0].DeadlineMoved != "" {
		t.Errorf("what-if: moved %d, rows %+v; want old moved: %q", res.MovedByCalendar, res.Rows, want)
	}
	p.Calendar.WorkingHours = "17:00-09:00"
	if _, err := scheduler.WhatIf(now, testCatalog(t), "g", p, in); err == nil || !strings.Contains(err.Error(), "calendar.working_hours") {
		t.Errorf("what-if of a bad calendar: err = %v, want the field named", err)
	}
}
