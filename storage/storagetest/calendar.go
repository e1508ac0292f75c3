package storagetest

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// testMSPolicyCalendar: a policy's business calendar, the explanation of a
// moved deadline and the Mac's zone on the update state, and the history entry that records
// the move come back as stored; a policy set again without a calendar
// has none.
func testMSPolicyCalendar(t *testing.T, s ManagedOSStore) {
	ctx := context.Background()
	cal := &softwareupdate.Calendar{WorkingDays: "mon-thu,sat", WorkingHours: "08:30-24:00", Holidays: []softwareupdate.Holiday{
		{Date: "2026-12-26", Name: "Boxing Day"}, {Date: "01-01", Name: "New Year's Day"}, {Date: "2026-12-31"},
	}}
	p := softwareupdate.Policy{Mode: softwareupdate.ModeManual, MinimumVersion: "15.2", Date: "2026-12-26", TimeOfDay: "12:00",
		TimeZone: "Europe/Berlin", Calendar: cal}
	if _, err := s.PutPolicy(ctx, scheduler.PolicyRecord{GroupID: scheduler.DefaultGroupID, Policy: p, UpdatedAt: t0, UpdatedBy: "admin"}, nil); err != nil {
		t.Fatal(err)
	}
	ps, err := s.Policies(ctx)
	if err != nil || len(ps) != 1 {
		t.Fatalf("Policies = %+v, %v", ps, err)
	}
	if !reflect.DeepEqual(ps[0].Policy, p) {
		t.Errorf("stored policy = %+v (calendar %+v), want %+v (calendar %+v)", ps[0].Policy, ps[0].Policy.Calendar, p, cal)
	}
	p.Calendar = nil
	if _, err := s.PutPolicy(ctx, scheduler.PolicyRecord{GroupID: scheduler.DefaultGroupID, Policy: p, UpdatedAt: t0, UpdatedBy: "admin"}, nil); err != nil {
		t.Fatal(err)
	}
	if ps, err := s.Policies(ctx); err != nil || len(ps) != 1 || ps[0].Policy.Calendar != nil {
		t.Errorf("after clearing the calendar: %+v, %v", ps, err)
	}

	moved := "Sat 2026-12-26 12:00 is a holiday (Boxing Day) → Mon 2026-12-28 09:00 Europe/Berlin"
	deadline := time.Date(2026, 12, 28, 8, 0, 0, 0, time.UTC)
	st := &scheduler.State{DeviceID: "CAL", Phase: softwareupdate.PhasePending, Target: "15.2", Deadline: deadline, DeadlineMoved: moved,
		Facts: scheduler.Facts{OSVersion: "15.1", TimeZone: "Europe/Berlin"}}
	note := scheduler.Transition{At: t0, Kind: scheduler.EventMoved, Target: "15.2", Deadline: deadline, Reason: "deadline moved by the business calendar: " + moved}
	if err := s.Commit(ctx, []scheduler.Commit{{State: st, History: []scheduler.Transition{note}}}, t0); err != nil {
		t.Fatal(err)
	}
	sts, err := s.States(ctx, []string{"CAL"})
	if err != nil || sts[0] == nil || sts[0].DeadlineMoved != moved || !sts[0].Deadline.Equal(deadline) || sts[0].Facts.TimeZone != "Europe/Berlin" {
		t.Fatalf("stored state = %+v, %v; want deadline moved %q and the Mac's zone", sts, err, moved)
	}
	h, err := s.History(ctx, "CAL", 10)
	if err != nil || len(h) != 1 || h[0].Kind != scheduler.EventMoved || h[0].Reason != note.Reason || !h[0].Deadline.Equal(deadline) {
		t.Errorf("history = %+v, %v; want the move", h, err)
	}
}
