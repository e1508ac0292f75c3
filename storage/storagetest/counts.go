package storagetest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm/ddm"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/migrate/record"
)

// CountsStore is what RunCounts needs: the per-kind counts that
// storage/migrate compares on both sides of a copy, and the stores of the
// rollout, webhook and reporting kinds it writes.
type CountsStore interface {
	Counts(ctx context.Context) (record.Counts, error)
	scheduler.GroupStore
	RolloutStores
	ddm.Store
}

// RolloutStores are the stores of the rollout, webhook and reporting kinds.
type RolloutStores interface {
	scheduler.PauseStore
	scheduler.RingStore
	storage.WebhookOutbox
	storage.WebhookEndpointStore
	storage.WebhookOnceStore
	storage.ComplianceDayStore
	storage.EvidenceStore
	storage.ForecastMarkStore
}

// RunCounts checks that a backend counts every kind of record.Kinds, and
// counts the rollout, webhook and reporting kinds as the records stored
// through their own interfaces: a migration is verified by these counts,
// so a kind either backend miscounts would pass unnoticed or fail every
// migration.
func RunCounts(t *testing.T, newStore func(t *testing.T) CountsStore) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	s := newStore(t)
	ctx := t.Context()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	c, err := s.Counts(ctx)
	must(err)
	for _, k := range record.Kinds {
		if n, ok := c[k]; !ok || n != 0 {
			t.Errorf("empty store: count of %s = %d (counted: %v), want 0", k, n, ok)
		}
	}

	// Pauses first: with no endpoint yet, they queue no deliveries.
	must(s.PutGroup(ctx, scheduler.Group{ID: "pilot"}, nil))
	must(s.PutGroup(ctx, scheduler.Group{ID: "broad"}, nil))
	must(s.PutPause(ctx, scheduler.Pause{GroupID: scheduler.FleetPause, Reason: "r", Actor: "a", At: t0}, nil))
	must(s.PutPause(ctx, scheduler.Pause{GroupID: "pilot", Reason: "r", Actor: "a", At: t0}, nil))
	must(s.PutRingPlan(ctx, scheduler.RingPlan{ID: "plan", Groups: []string{"pilot", "broad"},
		States: []scheduler.RingState{{Started: t0, Promoted: &scheduler.Promotion{At: t0, Actor: "a"}}, {}}}, nil))
	must(s.PutWebhookEndpoint(ctx, storage.WebhookEndpoint{ID: "ops", URL: "https://hooks.example.com", Secret: []byte("sealed"), Created: t0}))
	delivery := func(ev string) storage.WebhookDelivery {
		return storage.WebhookDelivery{EventID: ev, Endpoint: "ops", Type: "test", Created: t0, Body: json.RawMessage(`{}`), NextAt: t0}
	}
	must(s.EnqueueWebhooks(ctx, []storage.WebhookDelivery{delivery("e1")}))
	_, err = s.EnqueueWebhooksOnce(ctx, []storage.WebhookOnceEvent{{ID: "once", KeepUntil: t0.Add(time.Hour), Deliveries: []storage.WebhookDelivery{delivery("once")}}})
	must(err)
	must(s.PutComplianceDay(ctx, "2026-03-02", []storage.ComplianceDay{
		{Day: "2026-03-02", GroupID: "pilot", Devices: 2, Managed: 2, Compliant: 1},
		{Day: "2026-03-02", GroupID: "broad", Devices: 1},
	}))
	must(s.PutEvidenceDay(ctx, storage.EvidenceDay{Day: "2026-03-02", TakenAt: t0, Rows: []storage.EvidenceRow{{Managed: 3, Compliant: 1}}}))
	must(s.UpdateForecastMarks(ctx, []storage.ForecastMark{{DeviceID: "A", Forecast: "at risk", Since: t0}}, nil, nil))
	must(s.UpdateDDM(ctx, "A", func(r *ddm.Record) ([]ddm.Event, error) {
		r.Status.Items = map[string]json.RawMessage{"a": json.RawMessage(`1`), "b": json.RawMessage(`{"x":2}`)}
		return []ddm.Event{{At: t0, Items: []string{"a", "b"}}}, nil
	}))

	c, err = s.Counts(ctx)
	must(err)
	want := record.Counts{
		record.Groups: 2, record.RolloutPauses: 2, record.RingPlans: 1,
		record.WebhookEndpoints: 1, record.WebhookOutbox: 2, record.WebhookOnce: 1,
		record.ComplianceDays: 2, record.EvidenceDays: 1, record.ForecastMarks: 1,
		record.DDMRecords: 1, record.DDMEvents: 1, record.DDMItems: 2,
	}
	for k, n := range want {
		if c[k] != n {
			t.Errorf("count of %s = %d, want %d", k, c[k], n)
		}
	}
}
