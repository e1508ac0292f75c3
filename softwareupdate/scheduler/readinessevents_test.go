package scheduler_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/internal/webhook"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// TestReadinessEventsTurnAndRecover: the leader's readiness check on the
// fake clock. A Mac on time is not announced; when its agent goes silent
// it is announced device.at_risk once, however many checks follow; when its disk fills as well it
// stays at risk and is not announced again; when both recover it is
// announced device.ready once. A Mac that is at risk and then becomes
// compliant is announced ready as it leaves the forecast.
func TestReadinessEventsTurnAndRecover(t *testing.T) {
	ctx := t.Context()
	u := newUnit(t, utcAt(2026, 3, 2, 9, 0))
	hooks := u.subscribe(t)
	u.twoRings(10) // default group: 2026-03-20 17:00
	inv := mdm.Inventory{OSVersion: "15.1", BuildVersion: "B", ProductName: "Mac14,2", SoftwareUpdateDeviceID: "J413AP",
		IsSupervised: true, AvailableDeviceCapacity: 200}
	for _, id := range []string{"mac", "other"} {
		u.addMac(id, "15.1", "J413AP", true)
		u.setInventory(id, inv)
	}
	u.clk.Set(utcAt(2026, 3, 16, 9, 0))
	u.pass()
	agentAt := func(id string, at time.Time) {
		t.Helper()
		if err := u.store.PutAgentSecret(ctx, id, "hash", at); err != nil {
			t.Fatal(err)
		}
		if err := u.store.AppendAgentReport(ctx, id, storage.AgentReport{ReceivedAt: at, TimeZone: "UTC"}, at); err != nil {
			t.Fatal(err)
		}
	}
	seen := func(ids ...string) {
		t.Helper()
		m := map[string]time.Time{}
		for _, id := range ids {
			m[id] = u.clk.Now()
		}
		if err := u.store.TouchLastSeen(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	fc := scheduler.NewForecaster(scheduler.NewReporter(u.store, u.store, testCatalog(t), u.clk), staticUnconfirmed{}, u.store)
	check := func() {
		t.Helper()
		if _, err := webhook.CheckReadiness(ctx, u.store, fc, u.clk.Now()); err != nil {
			t.Fatal(err)
		}
	}
	forecastEvents := func() []webhook.ForecastData {
		t.Helper()
		var out []webhook.ForecastData
		for _, e := range hooks.drain(t, webhook.TypeDeviceAtRisk, webhook.TypeDeviceReady) {
			var d webhook.ForecastData
			if err := json.Unmarshal(e.Data, &d); err != nil {
				t.Fatal(err)
			}
			if (e.Type == webhook.TypeDeviceReady) != (d.Forecast == string(scheduler.ForecastOnTime) || d.Forecast == "") {
				t.Fatalf("%s with forecast %q", e.Type, d.Forecast)
			}
			out = append(out, d)
		}
		return out
	}
	step := func(d time.Duration) {
		u.clk.Set(u.clk.Now().Add(d))
		agentAt("other", u.clk.Now())
		seen("other")
	}

	// Both Macs on time: nothing announced, nothing marked.
	agentAt("mac", u.clk.Now())
	agentAt("other", u.clk.Now())
	seen("mac", "other")
	check()
	if got := forecastEvents(); len(got) != 0 {
		t.Fatalf("Macs on time announced: %+v", got)
	}
	if marks, err := u.store.ForecastMarks(ctx); err != nil || len(marks) != 0 {
		t.Fatalf("marks of Macs on time: %+v %v", marks, err)
	}

	// mac's agent goes silent for more than 48 hours (the Mac still checks in).
	for range 10 {
		step(6 * time.Hour)
		seen("mac")
		check()
	}
	got := forecastEvents()
	if len(got) != 1 || got[0].DeviceID != "mac" || got[0].Forecast != string(scheduler.ForecastAtRisk) || got[0].From != "" {
		t.Fatalf("after the agent fell silent: %+v, want one device.at_risk for mac", got)
	}
	// Its disk fills too: still at risk, not announced again.
	low := inv
	low.AvailableDeviceCapacity = 3
	u.setInventory("mac", low)
	check()
	check()
	if got := forecastEvents(); len(got) != 0 {
		t.Fatalf("a second reason to be at risk announced: %+v", got)
	}
	if marks, err := u.store.ForecastMarks(ctx); err != nil || len(marks) != 1 || len(marks[0].Causes) != 2 {
		t.Fatalf("marks = %+v, %v; want mac with two causes", marks, err)
	}

	// The agent comes back: the disk still holds it at risk.
	agentAt("mac", u.clk.Now())
	check()
	if got := forecastEvents(); len(got) != 0 {
		t.Fatalf("half-recovered Mac announced: %+v", got)
	}
	// The user frees space: ready, once.
	u.setInventory("mac", inv)
	seen("mac")
	check()
	step(5 * time.Minute)
	agentAt("mac", u.clk.Now())
	check()
	got = forecastEvents()
	if len(got) != 1 || got[0].DeviceID != "mac" || got[0].Forecast != string(scheduler.ForecastOnTime) || got[0].From != string(scheduler.ForecastAtRisk) {
		t.Fatalf("after recovering: %+v, want one device.ready for mac", got)
	}
	// Its disk fills again: a new device.at_risk, under a new event ID
	// (receivers dedupe on the ID), then ready again.
	u.setInventory("mac", low)
	check()
	u.setInventory("mac", inv)
	check()
	if got := forecastEvents(); len(got) != 2 || got[0].Forecast != string(scheduler.ForecastAtRisk) || got[1].Forecast != string(scheduler.ForecastOnTime) {
		t.Fatalf("at risk a second time: %+v", got)
	}
	ids := map[string]bool{}
	for _, e := range hooks.events {
		if e.Type == webhook.TypeDeviceAtRisk || e.Type == webhook.TypeDeviceReady {
			if ids[e.ID] {
				t.Fatalf("event ID %s used twice", e.ID)
			}
			ids[e.ID] = true
		}
	}

	// other turns at risk (its disk fills), then updates: it leaves the
	// forecast and is announced ready.
	otherLow := inv
	otherLow.AvailableDeviceCapacity = 2
	u.setInventory("other", otherLow)
	check()
	if got := forecastEvents(); len(got) != 1 || got[0].DeviceID != "other" || got[0].Forecast != string(scheduler.ForecastAtRisk) {
		t.Fatalf("silent other: %+v", got)
	}
	done := inv
	done.OSVersion = "15.2"
	u.setInventory("other", done)
	u.pass()
	check()
	got = forecastEvents()
	if len(got) != 1 || got[0].DeviceID != "other" || got[0].Forecast != "" || got[0].Note == "" {
		t.Fatalf("compliant other: %+v, want device.ready leaving the forecast", got)
	}
	if marks, err := u.store.ForecastMarks(ctx); err != nil || len(marks) != 0 {
		t.Fatalf("marks at the end: %+v %v", marks, err)
	}
}
