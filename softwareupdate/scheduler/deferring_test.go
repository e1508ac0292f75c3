package scheduler_test

import (
	"context"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/mdm/mdmtest"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// TestDeferringOverHTTP: through the real HTTP stack on a fake clock, a Mac
// that answers NotNow to the forced install for a day after its deadline is
// shown as deferring (how many NotNow, since when) in its state and the
// compliance report, while its neighbour, which answers, becomes
// compliant; when it finally takes the command it installs and is no
// longer deferring.
func TestDeferringOverHTTP(t *testing.T) {
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
	var macs []*mac
	for _, name := range []string{"busy", "calm"} {
		x := s.enroll(t, rec, name, mdmtest.WithSupervised(true), mdmtest.WithHardware(hwAir), mdmtest.WithOS("15.1", "24B83"),
			mdmtest.WithCatalog(mdmtest.MinorUpdate("15.2", "24C101")), mdmtest.WithBootstrapToken([]byte("bootstrap-"+name)))
		if err := x.dev.SetBootstrapToken(ctx); err != nil {
			t.Fatal(err)
		}
		macs = append(macs, x)
	}
	busy, calm := macs[0], macs[1]
	s.settle(t, macs...)
	clk.Set(D.Add(-softwareupdate.NotifyWindow))
	s.settle(t, macs...)

	// An hour past the deadline the forced install goes out; busy defers it.
	busy.dev.AnswerNotNow("ScheduleOSUpdate", -1)
	after := D.Add(time.Hour)
	clk.Set(after)
	if _, err := s.sched.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		clk.Set(after.Add(time.Duration(i) * 6 * time.Hour))
		sess, err := busy.dev.Connect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := statusesOf(sess); got != "ScheduleOSUpdate:NotNow" {
			t.Fatalf("busy connect %d = %s", i, got)
		}
	}
	s.settle(t, calm)
	clk.Set(clk.Now().Add(time.Hour)) // the install and its verification
	s.settle(t, calm)
	if st := state(t, s, calm); st.Phase != softwareupdate.PhaseCompliant {
		t.Errorf("calm = %s", st.Phase)
	}
	st := state(t, s, busy)
	if scheduler.Status(st) != scheduler.StatusDeferring || st.Phase != softwareupdate.PhaseEnforce || st.NotNowCount != 4 || !st.NotNowSince.Equal(after) {
		t.Fatalf("busy: status %s phase %s, %d NotNow since %v", scheduler.Status(st), st.Phase, st.NotNowCount, st.NotNowSince)
	}
	rep, err := scheduler.NewReporter(s.store, s.store, s.cat, clk).Compliance(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Deferring) != 1 || rep.Deferring[0].NotNowCount != 4 || rep.ByStatus[scheduler.StatusDeferring] != 1 || rep.ByStatus["compliant"] != 1 {
		t.Errorf("report: deferring %+v, by status %v", rep.Deferring, rep.ByStatus)
	}

	// The Mac takes the command at last: it installs and stops deferring.
	busy.dev.ClearOverrides()
	clk.Set(after.Add(25 * time.Hour))
	s.settle(t, busy)
	clk.Set(after.Add(26 * time.Hour))
	s.settle(t, busy)
	if st := state(t, s, busy); st.Phase != softwareupdate.PhaseCompliant || st.NotNowCount != 0 {
		t.Errorf("busy after answering = %s (%s), NotNow %d", st.Phase, scheduler.Status(st), st.NotNowCount)
	}
}

func statusesOf(s *mdmtest.Session) string {
	out := ""
	for i, c := range s.Commands {
		if i > 0 {
			out += " "
		}
		out += c.RequestType + ":" + string(c.Status)
	}
	return out
}
