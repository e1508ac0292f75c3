package bolt

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

// putRolloutKinds stores one record of each rollout, webhook and reporting
// kind (TestExport). The group "pilot" must exist.
func putRolloutKinds(t *testing.T, s *Store, t0 time.Time) {
	t.Helper()
	ctx := t.Context()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.PutWebhookEndpoint(ctx, storage.WebhookEndpoint{ID: "ep", URL: "https://h.example.com", Secret: []byte("sealed\x00secret"), Created: t0}))
	must(s.PutPause(ctx, scheduler.Pause{GroupID: scheduler.FleetPause, Reason: "r", Actor: "a", At: t0}, nil))
	must(s.PutRingPlan(ctx, scheduler.RingPlan{ID: "plan", Groups: []string{"pilot", "default"},
		States: []scheduler.RingState{{Started: t0, Promoted: &scheduler.Promotion{At: t0, Actor: "a"}}, {}}}, nil))
	_, err := s.EnqueueWebhooksOnce(ctx, []storage.WebhookOnceEvent{{ID: "once", KeepUntil: t0.Add(time.Hour)}})
	must(err)
	must(s.PutComplianceDay(ctx, "2025-01-02", []storage.ComplianceDay{{Day: "2025-01-02", GroupID: "pilot", Devices: 1}}))
	must(s.PutEvidenceDay(ctx, storage.EvidenceDay{Day: "2025-01-02", TakenAt: t0}))
	must(s.UpdateForecastMarks(ctx, []storage.ForecastMark{{DeviceID: "A-1", Forecast: "at risk", Since: t0}}, nil, nil))
}

// exportRolloutKinds exports the typed rollout kinds into got, checks what
// they carry and counts the DDM items of ddms.
func exportRolloutKinds(t *testing.T, s *Store, t0 time.Time, got record.Counts, ddms []record.DDM, raw map[string][]record.CatalogItem) {
	t.Helper()
	ctx := t.Context()
	for _, r := range ddms {
		var rec ddm.Record
		if err := json.Unmarshal(r.Record, &rec); err != nil {
			t.Fatal(err)
		}
		got[record.DDMItems] += len(rec.Status.Items)
	}
	err := s.ExportComplianceDays(ctx, func(storage.ComplianceDay) error { got[record.ComplianceDays]++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	err = s.ExportWebhookEndpoints(ctx, func(e storage.WebhookEndpoint) error {
		got[record.WebhookEndpoints]++
		if string(e.Secret) != "sealed\x00secret" {
			t.Errorf("webhook endpoint secret exported as %q, want the sealed bytes", e.Secret)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The fleet pause's rollout.paused delivery to the endpoint.
	err = s.ExportWebhookOutbox(ctx, func(d storage.WebhookDelivery) error {
		got[record.WebhookOutbox]++
		if d.Endpoint != "ep" || d.Type != "rollout.paused" {
			t.Errorf("webhook delivery = %+v", d)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.ExportWebhookOnce(ctx, func(e record.OnceEntry) error {
		got[record.WebhookOnce]++
		if e.EventID != "once" || !e.KeepUntil.Equal(t0.Add(time.Hour)) {
			t.Errorf("once entry = %+v, want once kept until %v", e, t0.Add(time.Hour))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if p := raw[record.RolloutPauses]; len(p) != 1 || p[0].Key != "\x00" {
		t.Errorf("pauses export = %+v, want the fleet's", p)
	}
	// An export stops at the first error fn returns.
	stop := context.Canceled
	if err := s.ExportWebhookEndpoints(ctx, func(storage.WebhookEndpoint) error { return stop }); err == nil {
		t.Error("export went on after fn failed")
	}
}
