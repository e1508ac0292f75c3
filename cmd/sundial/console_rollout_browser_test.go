package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sundial-mdm/sundial/api"
	"github.com/sundial-mdm/sundial/internal/webhook"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// TestConsoleRolloutInBrowser: the overview shows a pause in force, the
// readiness forecast (the counts `GET /api/v1/reports/readiness` gives,
// with the top reasons and a link to the Macs at risk) and the ring gates
// as `rings show` has them, server-rendered under the console's CSP.
func TestConsoleRolloutInBrowser(t *testing.T) {
	f := newConsoleFleet(t)
	ts := f.ts
	ctx := t.Context()
	m := ts.app.manager
	if _, err := m.CreateGroup(ctx, "e2e-test", "broad", "Everyone else"); err != nil {
		t.Fatal(err)
	}
	if err := m.AssignDevices(ctx, "e2e-test", "broad", []string{f.macs[2].UDID}); err != nil {
		t.Fatal(err)
	}
	date, _ := policyDate(time.UTC, 3)
	if _, err := m.SetPolicy(ctx, "e2e-test", "broad", softwareupdate.Policy{Mode: softwareupdate.ModeManual,
		MinimumVersion: "14.6.1", Date: date, TimeOfDay: "12:00", TimeZone: "UTC", MinimumNoticeDays: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.admin.SetRingPlan(ctx, "macos", api.RingPlanBody{Groups: []string{"pilot", "broad"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.admin.Pause(ctx, "broad", "INC-4711 boot loops"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := ts.app.sched.RunOnce(ctx); err != nil && !errors.Is(err, scheduler.ErrConflict) {
			t.Fatal(err)
		}
	}
	// The leader's readiness check, as it runs every 5 minutes.
	if _, err := webhook.CheckReadiness(ctx, ts.app.store, ts.app.forecaster, time.Now()); err != nil {
		t.Fatal(err)
	}
	want, err := ts.admin.Readiness(ctx, "", 7)
	if err != nil {
		t.Fatal(err)
	}
	if want.Counts[scheduler.ForecastAtRisk]+want.Counts[scheduler.ForecastWillFail] == 0 {
		t.Fatalf("test setup: no Mac at risk in %+v", want.Counts)
	}
	plans, err := ts.admin.RingPlans(ctx)
	if err != nil || len(plans) != 1 || !plans[0].Evaluated || !plans[0].Rings[1].Held {
		t.Fatalf("test setup: ring plans %+v, %v; want broad held", plans, err)
	}

	bctx := browser(t)
	browse(t, bctx, "sign in", signInActions(ts.url, f.adminKey)...)
	var onTime, atRisk, willFail, reasons, pilotState, broadState, broadWhy, pause string
	browse(t, bctx, "rollout on the overview",
		chromedp.WaitVisible(chromedp.CSS("#forecast")),
		shot(t, "overview-rollout"),
		into(&onTime, chromedp.Text(chromedp.CSS(`#forecast-counts tr[data-forecast="on-time"] td`))),
		into(&atRisk, chromedp.Text(chromedp.CSS(`#forecast-counts tr[data-forecast="at-risk"] td`))),
		into(&willFail, chromedp.Text(chromedp.CSS(`#forecast-counts tr[data-forecast="will-fail"] td`))),
		into(&reasons, chromedp.Text(chromedp.CSS(`#forecast-reasons`))),
		into(&pilotState, chromedp.Text(chromedp.CSS(`#ring-gates tr[data-ring="pilot"] td`))),
		into(&broadState, chromedp.Text(chromedp.CSS(`#ring-gates tr[data-ring="broad"] td`))),
		into(&broadWhy, chromedp.Text(chromedp.CSS(`#ring-gates tr[data-ring="broad"] td:last-child`))),
		into(&pause, chromedp.Text(chromedp.CSS(`#pauses tr[data-pause="broad"]`))))
	got := [3]int{atoi(t, onTime), atoi(t, atRisk), atoi(t, willFail)}
	if exp := [3]int{want.Counts[scheduler.ForecastOnTime], want.Counts[scheduler.ForecastAtRisk], want.Counts[scheduler.ForecastWillFail]}; got != exp {
		t.Fatalf("forecast on the overview (on time, at risk, will fail) = %v, the API %v", got, exp)
	}
	var why []string
	for _, mac := range want.Macs {
		why = append(why, mac.Reasons...)
	}
	if reasons == "" || (strings.Contains(strings.Join(why, ";"), "no agent report") && !strings.Contains(reasons, "agent alive")) {
		t.Fatalf("top reasons %q; the API's reasons %q", reasons, why)
	}
	if pilotState != "started" || broadState != "held" || !strings.Contains(broadWhy, plans[0].Rings[1].Reason) {
		t.Fatalf("ring gates: pilot %q, broad %q (%q); rings show: %+v", pilotState, broadState, broadWhy, plans[0].Rings)
	}
	if !strings.Contains(pause, "INC-4711 boot loops") || !strings.Contains(pause, "initial admin") {
		t.Fatalf("pause row %q", pause)
	}

	// The link lists the Macs at risk, each linked to its page.
	var rows int
	browse(t, bctx, "readiness page",
		chromedp.Click(chromedp.CSS("#forecast-list")),
		chromedp.WaitVisible(chromedp.CSS("#readiness")),
		shot(t, "readiness"),
		into(&rows, chromedp.Evaluate[int](`document.querySelectorAll("#readiness tbody tr").length`)))
	if exp := want.Counts[scheduler.ForecastAtRisk] + want.Counts[scheduler.ForecastWillFail]; rows != exp {
		t.Fatalf("readiness page lists %d Macs, the API forecasts %d at risk or failing", rows, exp)
	}
	for _, mac := range want.Macs {
		if mac.Forecast == scheduler.ForecastOnTime {
			continue
		}
		var n int
		browse(t, bctx, "row "+mac.DeviceID, into(&n, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll('#readiness tr[data-device=%q] a[href="/ui/devices/%s"]').length`,
			mac.DeviceID, mac.DeviceID))))
		if n != 1 {
			t.Errorf("readiness page lacks %s (%s)", mac.DeviceID, mac.Forecast)
		}
	}
}
