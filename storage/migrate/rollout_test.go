package migrate

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm/ddm"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/storagetest"
)

// rolloutBackend is what the rollout, webhook and reporting features
// store, read back through both stores' public APIs.
type rolloutBackend = storagetest.RolloutStores

// far is after every time of the fixture: every delivery is due by then.
var far = at(24 * 365 * time.Hour)

// The once-ledger's event of the fixture and when it may be forgotten.
const onceEvent = "evt-release-14.8"

var onceKeep = at(40 * time.Hour)

// populateRollout adds what the rollout, webhook and reporting features
// store: webhook endpoints (sealed secrets), pauses (whose rollout.paused
// events wait in the outbox), a ring plan with a started ring and a
// promotion, a delivery that failed once, an event in the once-ledger,
// compliance and evidence days, forecast marks and a DDM record with
// several status items. It runs after populate made the groups.
func populateRollout(t *testing.T, s backend) {
	ctx := t.Context()
	must(t, s.PutWebhookEndpoint(ctx, storage.WebhookEndpoint{ID: "ep-all", URL: "https://hooks.example.com/all",
		Secret: []byte("sealed:\x00\x01secret-all"), Created: at(24 * time.Hour)}))
	must(t, s.PutWebhookEndpoint(ctx, storage.WebhookEndpoint{ID: "ep-pauses", URL: "http://10.0.0.2/hook",
		Events: []string{"rollout.paused", "rollout.resumed"}, Secret: []byte("sealed-pauses"), Created: at(24*time.Hour + time.Minute)}))
	audit := func(action, subject string) *scheduler.AuditEntry {
		a, err := scheduler.NewAuditEntry(at(25*time.Hour), "admin@example.com", action, subject, nil, nil)
		must(t, err)
		return a
	}
	must(t, s.PutPause(ctx, scheduler.Pause{GroupID: scheduler.FleetPause, Reason: "bad build", Actor: "admin", At: at(25 * time.Hour)}, audit("rollout.pause", "fleet")))
	must(t, s.PutPause(ctx, scheduler.Pause{GroupID: "pilot", Reason: "exam week", Actor: "admin", At: at(25*time.Hour + time.Second)}, audit("rollout.pause", "pilot")))
	minOK := 90
	must(t, s.PutRingPlan(ctx, scheduler.RingPlan{ID: "waves", Groups: []string{"pilot", "broad"}, Gate: scheduler.RingGate{MinCompliantPercent: &minOK},
		States: []scheduler.RingState{{Started: at(26 * time.Hour), Promoted: &scheduler.Promotion{At: at(27 * time.Hour), Actor: "admin"}}, {Started: at(27 * time.Hour)}}},
		audit("ringplan.set", "waves")))
	// A delivery that failed once, and an event emitted once (a release the
	// catalog learned), kept in the ledger after its delivery is gone.
	must(t, s.EnqueueWebhooks(ctx, []storage.WebhookDelivery{{EventID: "evt-phase-1", Endpoint: "ep-all", Type: "device.phase",
		Created: at(26 * time.Hour), Body: json.RawMessage(`{"id":"evt-phase-1","type":"device.phase"}`), NextAt: at(26 * time.Hour)}}))
	must(t, s.RetryWebhook(ctx, "evt-phase-1", "ep-all", 1, at(26*time.Hour+time.Minute), "502 Bad Gateway"))
	n, err := s.EnqueueWebhooksOnce(ctx, []storage.WebhookOnceEvent{{ID: onceEvent, KeepUntil: onceKeep, Deliveries: []storage.WebhookDelivery{
		{EventID: onceEvent, Endpoint: "ep-all", Type: "catalog.new_release", Created: at(27 * time.Hour), Body: json.RawMessage(`{"version":"14.8"}`), NextAt: at(27 * time.Hour)}}}})
	must(t, err)
	if n != 1 {
		t.Fatalf("once-ledger event queued %d times, want 1", n)
	}
	must(t, s.AckWebhook(ctx, onceEvent, "ep-all"))
	for i, day := range []string{"2025-03-03", "2025-03-04"} {
		must(t, s.PutComplianceDay(ctx, day, []storage.ComplianceDay{
			{Day: day, GroupID: "broad", Devices: 4, Managed: 3, Compliant: i + 1},
			{Day: day, GroupID: "pilot", Devices: 2, Managed: 2, Compliant: 2},
		}))
	}
	must(t, s.PutEvidenceDay(ctx, storage.EvidenceDay{Day: "2025-03-04", TakenAt: at(time.Hour), ExceptionsTotal: 1,
		Rows: []storage.EvidenceRow{
			{Managed: 5, Compliant: 3, DeadlinePassed: 2, OnTime: 1, Patched: 3, FromReleaseMedian: 86400, FromReleaseP90: 172800,
				Releases: []storage.EvidenceRelease{{Version: "14.7", Posted: at(-240 * time.Hour), Required: 4, PatchedAfter: [][2]int{{1, 2}, {3, 1}}}}},
			{GroupID: "pilot", Plan: "waves", Ring: 1, Managed: 2, Compliant: 2},
		},
		Exceptions: []storage.EvidenceException{{Scope: "device", ID: "MAC-02", GroupID: "broad", Exempt: true, Expires: at(96 * time.Hour), Reason: "travelling", GrantedBy: "admin"}},
	}))
	must(t, s.UpdateForecastMarks(ctx, []storage.ForecastMark{
		{DeviceID: "MAC-00", GroupID: "pilot", Forecast: "at risk", Causes: []string{"free-space"}, Reasons: []string{"8 GB free"}, Target: "14.7", Deadline: at(240 * time.Hour), Since: at(28 * time.Hour)},
		{DeviceID: "MAC-01", Forecast: "will comply on time", Since: at(28 * time.Hour)},
	}, nil, nil))
	// A status report with more items: items are stored one each.
	must(t, s.UpdateDDM(ctx, "MAC-01", func(r *ddm.Record) ([]ddm.Event, error) {
		r.Status.Items["softwareupdate.failure-reason"] = json.RawMessage(`{"count":1,"reason":"no space"}`)
		r.Status.Items["device.operating-system.version"] = json.RawMessage(`"14.6"`)
		return nil, nil
	}))
}

// compareRollout reads the rollout, webhook and reporting records through
// both stores' public APIs.
func compareRollout(t *testing.T, b, p backend) {
	ctx := t.Context()
	same(t, "pauses", read(t, func() ([]scheduler.Pause, error) { return p.Pauses(ctx) }), read(t, func() ([]scheduler.Pause, error) { return b.Pauses(ctx) }))
	same(t, "ring plans", read(t, func() ([]scheduler.RingPlan, error) { return p.RingPlans(ctx) }), read(t, func() ([]scheduler.RingPlan, error) { return b.RingPlans(ctx) }))
	same(t, "webhook endpoints", read(t, func() ([]storage.WebhookEndpoint, error) { return p.WebhookEndpoints(ctx) }), read(t, func() ([]storage.WebhookEndpoint, error) { return b.WebhookEndpoints(ctx) }))
	same(t, "webhook outbox", read(t, func() ([]storage.WebhookDelivery, error) { return p.DueWebhooks(ctx, far, 0) }), read(t, func() ([]storage.WebhookDelivery, error) { return b.DueWebhooks(ctx, far, 0) }))
	same(t, "compliance days", read(t, func() ([]storage.ComplianceDay, error) { return p.ComplianceDays(ctx, "2000-01-01") }), read(t, func() ([]storage.ComplianceDay, error) { return b.ComplianceDays(ctx, "2000-01-01") }))
	same(t, "evidence days", read(t, func() ([]storage.EvidenceDay, error) { return p.EvidenceDays(ctx, "2000-01-01", "2099-12-31") }), read(t, func() ([]storage.EvidenceDay, error) { return b.EvidenceDays(ctx, "2000-01-01", "2099-12-31") }))
	same(t, "forecast marks", read(t, func() ([]storage.ForecastMark, error) { return p.ForecastMarks(ctx) }), read(t, func() ([]storage.ForecastMark, error) { return b.ForecastMarks(ctx) }))
}

// carryOnRollout checks that both stores go on alike after the copy: the
// once-ledger still knows the event (it is not queued again) until it is
// pruned (PostgreSQL keeps microseconds: the copy rounds keep-until up, so
// an ID is never forgotten sooner, at most a microsecond later).
func carryOnRollout(t *testing.T, b, p backend) {
	ctx := t.Context()
	again := []storage.WebhookOnceEvent{{ID: onceEvent, KeepUntil: far, Deliveries: []storage.WebhookDelivery{
		{EventID: onceEvent, Endpoint: "ep-all", Type: "catalog.new_release", Created: at(33 * time.Hour), Body: json.RawMessage(`{"version":"14.8"}`), NextAt: at(33 * time.Hour)}}}}
	for name, s := range map[string]backend{"bolt": b, "pgsql": p} {
		before := len(read(t, func() ([]storage.WebhookDelivery, error) { return s.DueWebhooks(ctx, far, 0) }))
		n, err := s.EnqueueWebhooksOnce(ctx, again)
		must(t, err)
		if n != 0 {
			t.Errorf("%s: an event in the migrated once-ledger was queued again", name)
		}
		// Not yet forgotten just before its time, forgotten after it.
		if n, err := s.PruneWebhookOnce(ctx, onceKeep.Add(-time.Microsecond)); err != nil || n != 0 {
			t.Errorf("%s: prune before keep-until = %d, %v; want 0", name, n, err)
		}
		if n, err := s.PruneWebhookOnce(ctx, onceKeep.Add(2*time.Microsecond)); err != nil || n != 1 {
			t.Errorf("%s: prune after keep-until = %d, %v; want 1", name, n, err)
		}
		if after := len(read(t, func() ([]storage.WebhookDelivery, error) { return s.DueWebhooks(ctx, far, 0) })); after != before {
			t.Errorf("%s: outbox went from %d to %d deliveries", name, before, after)
		}
	}
	compareRollout(t, b, p)
}
