package scheduler_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// readyMac is a Mac with every readiness input in order, three days before
// its deadline on the declarative path.
func readyMac(now time.Time) scheduler.ReadinessInput {
	dev := &mdm.Device{ID: "A", LastSeen: now.Add(-time.Hour), Inventory: mdm.Inventory{SerialNumber: "C02X", AvailableDeviceCapacity: 120}}
	st := &scheduler.State{DeviceID: "A", Phase: softwareupdate.PhaseNotify, Target: "15.2", Deadline: now.Add(72 * time.Hour),
		Path:  softwareupdate.PathDeclarative,
		Facts: scheduler.Facts{OSVersion: "15.1", Supervised: true, AppleSilicon: true, Bootstrap: true, Enabled: true}}
	return scheduler.ReadinessInput{Device: dev, GroupID: "pilot", State: st, Agent: &storage.AgentState{LastReportAt: now.Add(-2 * time.Hour)}}
}

// TestForecastEachInput: a Mac lacking each input gets the forecast and the
// reason that input calls for; a ready Mac will comply on time.
func TestForecastEachInput(t *testing.T) {
	now := utcAt(2026, 3, 17, 9, 0)
	if m := scheduler.ForecastMac(now, readyMac(now)); m.Forecast != scheduler.ForecastOnTime || len(m.Reasons) != 0 || m.SerialNumber != "C02X" {
		t.Fatalf("ready Mac = %+v", m)
	}
	for _, tt := range []struct {
		name   string
		change func(x *scheduler.ReadinessInput)
		want   scheduler.Forecast
		reason string
	}{
		{"not supervised", func(x *scheduler.ReadinessInput) { x.State.Facts.Supervised = false }, scheduler.ForecastWillFail, "not supervised"},
		{"unsupported hardware", func(x *scheduler.ReadinessInput) { x.State.Phase = softwareupdate.PhaseUnsupported }, scheduler.ForecastWillFail, "hardware"},
		{"no bootstrap token", func(x *scheduler.ReadinessInput) { x.State.Facts.Bootstrap = false }, scheduler.ForecastAtRisk, "bootstrap token"},
		{"bootstrap token required", func(x *scheduler.ReadinessInput) {
			x.State.Facts.Bootstrap, x.State.RequiresBootstrap = false, true
		}, scheduler.ForecastWillFail, "needs a bootstrap token"},
		{"low disk", func(x *scheduler.ReadinessInput) { x.Device.Inventory.AvailableDeviceCapacity = 6.5 }, scheduler.ForecastAtRisk, "6.5 GB free"},
		{"low disk for a major upgrade", func(x *scheduler.ReadinessInput) {
			x.Device.Inventory.AvailableDeviceCapacity, x.State.MajorUpgrade = 20, true
		}, scheduler.ForecastAtRisk, "about 35 GB needed"},
		{"disk not reported", func(x *scheduler.ReadinessInput) { x.Device.Inventory.AvailableDeviceCapacity = 0 }, scheduler.ForecastAtRisk, "disk space unknown"},
		{"declaration not acknowledged", func(x *scheduler.ReadinessInput) { x.DeclarationUnconfirmed = true }, scheduler.ForecastAtRisk, "not acknowledged"},
		{"no agent", func(x *scheduler.ReadinessInput) { x.Agent = nil }, scheduler.ForecastAtRisk, "no agent"},
		{"agent silent", func(x *scheduler.ReadinessInput) { x.Agent.LastReportAt = now.Add(-72 * time.Hour) }, scheduler.ForecastAtRisk, "agent silent"},
		{"not seen for days", func(x *scheduler.ReadinessInput) { x.Device.LastSeen = now.Add(-5 * 24 * time.Hour) }, scheduler.ForecastAtRisk, "last check-in"},
		{"legacy, not downloaded the day before", func(x *scheduler.ReadinessInput) {
			x.State.Path, x.State.Deadline = softwareupdate.PathLegacy, now.Add(12*time.Hour)
		}, scheduler.ForecastAtRisk, "not downloaded"},
		{"failed for good", func(x *scheduler.ReadinessInput) { x.State.Failure = "gave up after 3 attempts" }, scheduler.ForecastWillFail, "gave up"},
		{"failed, retried", func(x *scheduler.ReadinessInput) {
			x.State.Failure, x.State.RetryAt = "MDM error 12021", now.Add(time.Hour)
		}, scheduler.ForecastAtRisk, "12021"},
		{"paused", func(x *scheduler.ReadinessInput) {
			x.State.Phase, x.State.Reason = softwareupdate.PhasePaused, "paused (the fleet) by oncall: bad build"
		}, scheduler.ForecastAtRisk, "bad build"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			x := readyMac(now)
			tt.change(&x)
			m := scheduler.ForecastMac(now, x)
			if m.Forecast != tt.want || !strings.Contains(strings.Join(m.Reasons, "; "), tt.reason) {
				t.Fatalf("forecast = %s %q, want %s with %q", m.Forecast, m.Reasons, tt.want, tt.reason)
			}
		})
	}
	// A legacy Mac that downloaded its update is not at risk for it.
	x := readyMac(now)
	x.State.Path, x.State.Deadline, x.State.Downloaded = softwareupdate.PathLegacy, now.Add(12*time.Hour), true
	if m := scheduler.ForecastMac(now, x); m.Forecast != scheduler.ForecastOnTime {
		t.Errorf("downloaded legacy Mac = %s %q", m.Forecast, m.Reasons)
	}
}

// staticUnconfirmed is the DDM layer's answer: these Macs have not
// confirmed their declaration.
type staticUnconfirmed []string

func (s staticUnconfirmed) Unconfirmed(context.Context, time.Time) ([]string, error) { return s, nil }

// TestReadinessTimeline: the forecast over the real store on the fake
// clock: only Macs whose deadline is within the window are listed; a Mac
// turns at risk when its agent goes silent and recovers when it reports.
func TestReadinessTimeline(t *testing.T) {
	ctx := t.Context()
	u := newUnit(t, utcAt(2026, 3, 2, 9, 0))
	u.twoRings(10) // default: 2026-03-20; late: 2026-03-30
	for _, id := range []string{"early", "later"} {
		u.addMac(id, "15.1", "J413AP", true)
		u.setInventory(id, mdm.Inventory{OSVersion: "15.1", BuildVersion: "B", ProductName: "Mac14,2", SoftwareUpdateDeviceID: "J413AP",
			IsSupervised: true, AvailableDeviceCapacity: 200})
	}
	if err := u.mgr.AssignDevices(ctx, "admin", "late", []string{"later"}); err != nil {
		t.Fatal(err)
	}
	u.pass()
	fc := scheduler.NewForecaster(scheduler.NewReporter(u.store, u.store, testCatalog(t), u.clk), staticUnconfirmed{}, u.store)
	for _, bad := range []struct {
		group string
		days  int
	}{{"", 0}, {"", scheduler.MaxReadinessDays + 1}, {"Bad Group", 7}} {
		if _, err := fc.Readiness(ctx, bad.group, bad.days); !errors.Is(err, scheduler.ErrInvalid) {
			t.Errorf("Readiness(%q, %d) = %v, want ErrInvalid", bad.group, bad.days, err)
		}
	}
	u.clk.Set(utcAt(2026, 3, 16, 9, 0))
	u.pass()
	agentAt := func(id string, at time.Time) {
		if err := u.store.PutAgentSecret(ctx, id, "hash", at); err != nil {
			t.Fatal(err)
		}
		if err := u.store.AppendAgentReport(ctx, id, storage.AgentReport{ReceivedAt: at, TimeZone: "UTC"}, at); err != nil {
			t.Fatal(err)
		}
	}
	agentAt("early", u.clk.Now().Add(-72*time.Hour)) // silent for three days
	if err := u.store.TouchLastSeen(ctx, map[string]time.Time{"early": u.clk.Now().Add(-time.Hour), "later": u.clk.Now()}); err != nil {
		t.Fatal(err)
	}
	rep, err := fc.Readiness(ctx, "", 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Macs) != 1 || rep.Macs[0].DeviceID != "early" {
		t.Fatalf("7-day forecast lists %+v, want only early (later's deadline is 14 days away)", rep.Macs)
	}
	if m := rep.Macs[0]; m.Forecast != scheduler.ForecastAtRisk || !strings.Contains(strings.Join(m.Reasons, ";"), "agent silent") {
		t.Fatalf("early = %s %q, want at risk (agent silent)", m.Forecast, m.Reasons)
	}
	if rep, err := fc.Readiness(ctx, "late", 30); err != nil || len(rep.Macs) != 1 || rep.Macs[0].DeviceID != "later" || rep.Counts[scheduler.ForecastAtRisk] != 1 {
		t.Fatalf("late group, 30 days = %+v, %v", rep, err)
	}
	// The agent reports again and the Mac checked in: it recovers.
	agentAt("early", u.clk.Now())
	if err := u.store.TouchLastSeen(ctx, map[string]time.Time{"early": u.clk.Now()}); err != nil {
		t.Fatal(err)
	}
	rep, err = fc.Readiness(ctx, "", 7)
	if err != nil || len(rep.Macs) != 1 {
		t.Fatal(rep, err)
	}
	if m := rep.Macs[0]; m.Forecast != scheduler.ForecastOnTime {
		t.Fatalf("early after its agent reported = %s %q, want on time", m.Forecast, m.Reasons)
	}
}
