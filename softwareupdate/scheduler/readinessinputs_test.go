package scheduler_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// TestReadinessInputsSameForecast: on a varied fleet in a real store, the
// forecaster reading through ReadinessInputs gives exactly the forecasts
// of the per-Mac reads (devices page by page, one agent read per Mac), for
// every group and window, with and without an agent store.
func TestReadinessInputsSameForecast(t *testing.T) {
	now := utcAt(2026, 3, 16, 9, 0)
	u := newUnit(t, now)
	ctx := context.Background()
	if err := u.store.PutGroup(ctx, scheduler.Group{ID: "lab", Name: "Lab"}, nil); err != nil {
		t.Fatal(err)
	}
	phases := []softwareupdate.Phase{softwareupdate.PhasePending, softwareupdate.PhaseNotify, softwareupdate.PhaseCountdown,
		softwareupdate.PhaseEnforce, softwareupdate.PhaseFailed, softwareupdate.PhasePaused, softwareupdate.PhaseIneligible,
		softwareupdate.PhaseUnsupported, softwareupdate.PhaseCompliant, softwareupdate.PhaseExempt}
	deadlines := []time.Duration{0, -time.Hour, 6 * time.Hour, 30 * time.Hour, 3 * 24 * time.Hour, 7 * 24 * time.Hour, 20 * 24 * time.Hour}
	var commits []scheduler.Commit
	var lab, unconfirmed []string
	seen := map[string]time.Time{}
	// Each input varies on its own (a fixed seed), so that every
	// combination of failed checks turns up somewhere in the fleet.
	rnd := rand.New(rand.NewPCG(23, 7))
	pick := func(k int) int { return rnd.IntN(k) }
	const n = 200
	for i := range n {
		id := fmt.Sprintf("MAC-%03d", i)
		// A ready Mac has every input in order, so that some Macs will
		// comply on time.
		ready := pick(4) == 0
		supervised := ready || pick(5) != 0
		u.addMac(id, "15.1", "J413AP", supervised)
		inv := mdm.Inventory{OSVersion: "15.1", BuildVersion: "B", ProductName: "Mac14,2", SoftwareUpdateDeviceID: "J413AP",
			AvailableDeviceCapacity: []float64{0, 6.5, 20, 120, 200}[pick(5)]}
		if ready {
			inv.AvailableDeviceCapacity = 200
		}
		if pick(3) != 0 {
			inv.SerialNumber = fmt.Sprintf("C02%05d", i)
		}
		u.setInventory(id, inv)
		switch pick(3) {
		case 1:
			seen[id] = now.Add(-time.Hour)
		case 2:
			seen[id] = now.Add(-100 * time.Hour)
		}
		if ready {
			seen[id] = now.Add(-time.Hour)
		}
		a := pick(5)
		if ready {
			a = 4
		}
		switch a { // 0: no agent
		case 1: // registered, never reported
			if err := u.store.PutAgentSecret(ctx, id, "hash", now); err != nil {
				t.Fatal(err)
			}
		case 2, 3, 4: // reported recently, long ago, just now
			at := now.Add(-[]time.Duration{time.Hour, 50 * time.Hour, 10 * time.Minute}[a-2])
			if err := u.store.PutAgentSecret(ctx, id, "hash", at); err != nil {
				t.Fatal(err)
			}
			if err := u.store.AppendAgentReport(ctx, id, storage.AgentReport{ReceivedAt: at, TimeZone: "UTC"}, at); err != nil {
				t.Fatal(err)
			}
		}
		if pick(4) == 0 {
			lab = append(lab, id)
		}
		if !ready && pick(6) == 0 {
			unconfirmed = append(unconfirmed, id)
		}
		st := &scheduler.State{DeviceID: id, Phase: phases[pick(len(phases))], Target: "15.2", Reason: "reason " + id,
			Path:         []softwareupdate.EnforcementPath{softwareupdate.PathLegacy, softwareupdate.PathDeclarative}[pick(2)],
			MajorUpgrade: pick(6) == 0, Downloaded: pick(2) == 0, RequiresBootstrap: pick(8) == 0,
			Facts: scheduler.Facts{OSVersion: "15.1", Supervised: supervised, AppleSilicon: pick(3) != 0, Bootstrap: ready || pick(4) != 0, Enabled: true}}
		if ready {
			st.Phase, st.Downloaded, st.RequiresBootstrap = softwareupdate.PhaseNotify, true, false
		}
		if d := deadlines[pick(len(deadlines))]; d != 0 {
			st.Deadline = now.Add(d)
		}
		if !ready && pick(8) == 0 { // some failed Macs are retried
			st.Failure = "InstallFailed"
			if pick(2) == 0 {
				st.RetryAt = now.Add(time.Hour)
			}
		}
		commits = append(commits, scheduler.Commit{State: st})
	}
	// A user channel and a device that never enrolled have states too; a
	// listing must leave both out as the device pages do.
	commits = append(commits, scheduler.Commit{State: &scheduler.State{DeviceID: "MAC-000:user", Phase: softwareupdate.PhaseNotify}},
		scheduler.Commit{State: &scheduler.State{DeviceID: "GHOST", Phase: softwareupdate.PhaseNotify}})
	if err := u.store.Commit(ctx, commits, now); err != nil {
		t.Fatal(err)
	}
	if err := u.store.AssignDevices(ctx, "lab", lab, nil); err != nil {
		t.Fatal(err)
	}
	if err := u.store.TouchLastSeen(ctx, seen); err != nil {
		t.Fatal(err)
	}
	for _, agents := range []scheduler.AgentStates{u.store, nil} {
		reporter := scheduler.NewReporter(u.store, u.store, testCatalog(t), u.clk)
		perMac := scheduler.NewForecaster(reporter, staticUnconfirmed(unconfirmed), agents)
		paged := scheduler.NewForecaster(reporter, staticUnconfirmed(unconfirmed), agents, scheduler.WithReadinessInputs(u.store))
		total := 0
		for _, group := range []string{"", "lab", scheduler.DefaultGroupID} {
			for _, days := range []int{1, 7, 90} {
				want, err := perMac.Readiness(ctx, group, days)
				if err != nil {
					t.Fatal(err)
				}
				got, err := paged.Readiness(ctx, group, days)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("group %q, %d days, agents %v: paged forecast differs\n got %+v\nwant %+v", group, days, agents != nil, got, want)
				}
				total += len(want.Macs)
			}
		}
		// The fleet must give the comparison something to compare (without
		// an agent store no Mac is on time).
		rep, _ := perMac.Readiness(ctx, "", 90)
		if (agents != nil && rep.Counts[scheduler.ForecastOnTime] == 0) || rep.Counts[scheduler.ForecastAtRisk] == 0 ||
			rep.Counts[scheduler.ForecastWillFail] == 0 {
			t.Fatalf("fleet forecasts %v: not varied", rep.Counts)
		}
		if total == 0 {
			t.Fatal("nothing compared")
		}
	}
}
