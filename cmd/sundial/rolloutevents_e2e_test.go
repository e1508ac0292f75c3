package main

import (
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/api"
	"github.com/sundial-mdm/sundial/internal/webhook"
	"github.com/sundial-mdm/sundial/mdm/mdmtest"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
)

// TestRolloutWebhooks: the server as wired. A pause and its resume reach a
// receiver subscribed to them, signed, once each; a ring plan whose first
// ring has a Mac not yet updated announces ring.held once; after a
// restart, the new leader's readiness check announces the Mac (no agent,
// deadline in 3 days) device.at_risk, and does not repeat ring.held.
func TestRolloutWebhooks(t *testing.T) {
	t.Run("bolt", func(t *testing.T) { testRolloutWebhooks(t, "") })
	t.Run("pgsql", func(t *testing.T) { testRolloutWebhooks(t, replicaSchema(t)) })
}

func testRolloutWebhooks(t *testing.T, dsn string) {
	dir := t.TempDir()
	adjust := func(c *Config) {
		if dsn != "" {
			c.Storage, c.StorageDSN = "pgsql", dsn
		}
	}
	ts := startTestServerWith(t, dir, adjust)
	ctx := t.Context()
	all, pauses := newHookReceiver(t), newHookReceiver(t)
	for _, r := range []struct {
		id     string
		recv   *hookReceiver
		events []string
	}{{"all", all, nil}, {"pauses", pauses, []string{webhook.TypeRolloutPaused, webhook.TypeRolloutResumed}}} {
		added, err := ts.admin.AddWebhook(ctx, r.id, r.recv.srv.URL, r.events)
		if err != nil {
			t.Fatal(err)
		}
		r.recv.set(added.Secret, true)
	}

	m := ts.app.manager
	target, ok := catalog.Default().Lookup(catalog.MustParseVersion("14.6.1"))
	if !ok {
		t.Fatal("the embedded catalog lacks macOS 14.6.1")
	}
	mac := ts.enroll(t, mdmtest.WithHardware(hardwareFor(t, target)), mdmtest.WithOS("14.6", "23G80"))
	date, _ := policyDate(time.UTC, 3)
	for _, g := range []string{"pilot", "broad"} {
		if _, err := m.CreateGroup(ctx, "e2e-test", g, g); err != nil {
			t.Fatal(err)
		}
		if _, err := m.SetPolicy(ctx, "e2e-test", g, softwareupdate.Policy{Mode: softwareupdate.ModeManual,
			MinimumVersion: "14.6.1", Date: date, TimeOfDay: "12:00", TimeZone: "UTC", MinimumNoticeDays: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.AssignDevices(ctx, "e2e-test", "pilot", []string{mac.UDID}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.admin.SetRingPlan(ctx, "macos", api.RingPlanBody{Groups: []string{"pilot", "broad"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.admin.Pause(ctx, "pilot", "INC-4711"); err != nil {
		t.Fatal(err)
	}
	if err := ts.admin.Resume(ctx, "pilot"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(pauses.received("")) == 2 && len(all.received(webhook.TypeRingHeld+":")) == 1 })
	// Delivery is at least once: stop only when the worker has recorded
	// every answer, so that the restart below must not send anything again.
	waitFor(t, func() bool {
		due, err := ts.app.store.DueWebhooks(ctx, time.Now().Add(24*time.Hour), 10)
		return err == nil && len(due) == 0
	})
	ts.stop()

	ts = startTestServerWith(t, dir, adjust)
	waitFor(t, func() bool { return len(all.received(webhook.TypeDeviceAtRisk+":")) == 1 })
	// The new leader evaluated the same gate: nothing repeated.
	if _, err := ts.app.sched.RunOnce(ctx); err != nil {
		t.Logf("pass: %v", err)
	}
	time.Sleep(3 * webhookInterval)
	for prefix, want := range map[string]int{webhook.TypeRingHeld + ":": 1, webhook.TypeDeviceAtRisk + ":": 1} {
		for id, n := range all.received(prefix) {
			if n != 1 {
				t.Errorf("%s delivered %d times", id, n)
			}
		}
		if got := len(all.received(prefix)); got != want {
			t.Errorf("%s events: %d, want %d", prefix, got, want)
		}
	}
	if got := len(pauses.received("")); got != 2 {
		t.Errorf("the pause receiver got %d events, want the pause and the resume", got)
	}
}
