package scheduler_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/mdmtest"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// TestMixedFleetToTheDeadline drives a small fleet of misbehaving Macs over
// real HTTP on a fake clock to two hours past their deadline: unsupervised
// Macs, Macs that answer NotNow to every update command, Macs offline
// across the deadline, Apple silicon Macs without an escrowed bootstrap
// token, Macs whose inventory an admin refreshes with a partial
// DeviceInformation, and well-behaved Macs. It checks the issue 20 states:
// no pass fails; every eligible Mac is compliant or visibly deferring;
// bootstrap-less Macs are flagged before the deadline; unsupervised Macs
// are ineligible and never sent an update command; no forced install goes
// out before the deadline; the report's counts equal the per-device states.
func TestMixedFleetToTheDeadline(t *testing.T) {
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
	const perKind = 3
	kinds := []string{"normal", "unsupervised", "notnow", "offline", "notoken", "partial"}
	byKind := map[string][]*mac{}
	var answering []*mac // Macs that answer their commands (drained by settle)
	for _, kind := range kinds {
		for i := range perKind {
			name := fmt.Sprintf("%s-%d", kind, i)
			opts := []mdmtest.Option{mdmtest.WithSupervised(kind != "unsupervised"), mdmtest.WithHardware(hwAir),
				mdmtest.WithOS("15.1", "24B83"), mdmtest.WithCatalog(mdmtest.MinorUpdate("15.2", "24C101"))}
			if kind != "notoken" {
				opts = append(opts, mdmtest.WithBootstrapToken([]byte("bootstrap-"+name)))
			}
			x := s.enroll(t, rec, name, opts...)
			if kind != "notoken" {
				if err := x.dev.SetBootstrapToken(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if kind == "notnow" {
				x.dev.AnswerNotNow("ScheduleOSUpdate", -1)
			} else {
				answering = append(answering, x)
			}
			byKind[kind] = append(byKind[kind], x)
		}
	}
	all := func() []*mac {
		var out []*mac
		for _, k := range kinds {
			out = append(out, byKind[k]...)
		}
		return out
	}()
	// connectDeferring lets the NotNow Macs check in once (drain would
	// never see them quiet).
	connectDeferring := func() {
		t.Helper()
		for _, x := range byKind["notnow"] {
			if _, err := x.dev.Connect(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	at := func(when time.Time) {
		t.Helper()
		clk.Set(when)
		s.settle(t, answering...)
		connectDeferring()
	}
	at(t0)
	// An admin's DeviceInformation for two keys only.
	cmd, err := mdm.NewCommand("DeviceInformation", map[string]any{"Queries": []string{"OSVersion", "SerialNumber"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range byKind["partial"] {
		if err := s.store.Enqueue(ctx, []string{x.dev.UDID}, cmd, clk.Now()); err != nil {
			t.Fatal(err)
		}
	}
	at(t0.Add(time.Hour))
	notify := D.Add(-softwareupdate.NotifyWindow)
	at(notify)
	at(notify.Add(2 * time.Hour))
	// Before the deadline the bootstrap-less Macs are flagged.
	for _, x := range byKind["notoken"] {
		if st := state(t, s, x); scheduler.Status(st) != scheduler.StatusNeedsBootstrapToken {
			t.Errorf("%s before the deadline: status %s (requires %v, escrowed %v)", x.name, scheduler.Status(st), st.RequiresBootstrap, st.Facts.Bootstrap)
		}
	}
	for _, x := range byKind["offline"] {
		x.dev.SetOffline(true)
	}
	at(D.Add(-time.Hour))
	at(D.Add(10 * time.Minute))
	at(D.Add(40 * time.Minute)) // enforce: forced installs go out
	for _, x := range byKind["offline"] {
		x.dev.SetOffline(false)
	}
	for step := D.Add(time.Hour); !step.After(D.Add(2 * time.Hour)); step = step.Add(15 * time.Minute) {
		at(step)
	}

	want := map[string]string{"normal": "compliant", "unsupervised": "ineligible", "notnow": scheduler.StatusDeferring,
		"offline": "compliant", "notoken": "compliant", "partial": "compliant"}
	counts := map[string]int{}
	for _, kind := range kinds {
		for _, x := range byKind[kind] {
			st := state(t, s, x)
			status := scheduler.Status(st)
			counts[status]++
			if status != want[kind] {
				t.Errorf("%s: status %s (phase %s, %q, failure %q)", x.name, status, st.Phase, st.Reason, st.Failure)
			}
			if kind == "notnow" && (st.NotNowCount == 0 || st.NotNowSince.Before(D)) {
				t.Errorf("%s: %d NotNow since %v", x.name, st.NotNowCount, st.NotNowSince)
			}
			if kind == "unsupervised" && st.Reason != "ineligible: not supervised" {
				t.Errorf("%s: reason %q", x.name, st.Reason)
			}
		}
	}
	forced := map[string]int{}
	for _, x := range rec.take() {
		switch {
		case x.Type == "ScheduleOSUpdate" && strings.HasPrefix(x.Mac, "unsupervised"):
			t.Errorf("an unsupervised Mac was sent %s", x)
		case x.Action == "InstallForceRestart":
			if when := recordedAt(x.At, D); when.Before(D.Add(softwareupdate.CountdownWindow)) {
				t.Errorf("forced install before the deadline: %s", x)
			}
			forced[x.Mac]++
		}
	}
	for name, n := range forced {
		if n > 5 {
			t.Errorf("%s was sent %d forced installs", name, n)
		}
	}
	rep, err := scheduler.NewReporter(s.store, s.store, s.cat, clk).Compliance(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	for status, n := range counts {
		if rep.ByStatus[status] != n {
			t.Errorf("report counts %d %s, devices %d", rep.ByStatus[status], status, n)
		}
	}
	if rep.Devices != len(all) || len(rep.Ineligible) != perKind || len(rep.Deferring) != perKind || len(rep.Failures) != 0 {
		t.Errorf("report: %d devices, %d ineligible, %d deferring, failures %+v", rep.Devices, len(rep.Ineligible), len(rep.Deferring), rep.Failures)
	}
}

// recordedAt reads a recorder time ("01-02 15:04", no year) as the instant
// nearest to near.
func recordedAt(at string, near time.Time) time.Time {
	t, _ := time.Parse("01-02 15:04", at)
	t = t.AddDate(near.Year(), 0, 0)
	switch {
	case t.Sub(near) > 180*24*time.Hour:
		t = t.AddDate(-1, 0, 0)
	case near.Sub(t) > 180*24*time.Hour:
		t = t.AddDate(1, 0, 0)
	}
	return t
}
