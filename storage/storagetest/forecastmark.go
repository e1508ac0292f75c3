package storagetest

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/storage"
)

// ForecastMarkStore is what RunForecastMarks needs: the marks and the
// outbox they write to.
type ForecastMarkStore interface {
	storage.ForecastMarkStore
	storage.WebhookOutbox
}

// RunForecastMarks runs the conformance suite of storage.ForecastMarkStore.
func RunForecastMarks(t *testing.T, newStore func(t *testing.T) ForecastMarkStore) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	mark := func(id, fc string, causes ...string) storage.ForecastMark {
		return storage.ForecastMark{DeviceID: id, GroupID: "pilot", Forecast: fc, Causes: causes, Reasons: causes,
			Target: "15.2", Deadline: t0.Add(72 * time.Hour), Since: t0}
	}
	delivery := func(ev string) storage.WebhookDelivery {
		return storage.WebhookDelivery{EventID: ev, Endpoint: "ops", Type: "device.at_risk", Created: t0,
			Body: []byte(`{"id":"` + ev + `"}`), NextAt: t0}
	}
	t.Run("PutReplaceDrop", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		if got, err := s.ForecastMarks(ctx); err != nil || len(got) != 0 {
			t.Fatalf("empty store: %+v %v", got, err)
		}
		if err := s.UpdateForecastMarks(ctx, nil, nil, nil); err != nil {
			t.Fatalf("empty update: %v", err)
		}
		a, b := mark("A", "at risk", "free disk"), mark("B", "will comply on time")
		if err := s.UpdateForecastMarks(ctx, []storage.ForecastMark{b, a}, nil, []storage.WebhookDelivery{delivery("e1")}); err != nil {
			t.Fatal(err)
		}
		if got, err := s.ForecastMarks(ctx); err != nil || !reflect.DeepEqual(got, []storage.ForecastMark{a, b}) {
			t.Fatalf("marks = %+v, %v; want %+v", got, err, []storage.ForecastMark{a, b})
		}
		// A replaces its mark, B goes, an unknown drop is skipped.
		a2 := mark("A", "will comply on time")
		a2.Since = t0.Add(time.Hour)
		if err := s.UpdateForecastMarks(ctx, []storage.ForecastMark{a2}, []string{"B", "nobody"}, []storage.WebhookDelivery{delivery("e2")}); err != nil {
			t.Fatal(err)
		}
		if got, err := s.ForecastMarks(ctx); err != nil || !reflect.DeepEqual(got, []storage.ForecastMark{a2}) {
			t.Fatalf("marks after replace = %+v, %v", got, err)
		}
		due, err := s.DueWebhooks(ctx, t0.Add(time.Hour), 10)
		if err != nil || len(due) != 2 {
			t.Fatalf("outbox = %+v, %v; want e1 and e2", due, err)
		}
	})
	t.Run("RefusedChangesNothing", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		good := mark("A", "at risk", "agent alive")
		for name, bad := range map[string]storage.ForecastMark{
			"no device":      mark("", "at risk"),
			"no forecast":    mark("A", ""),
			"too many":       mark("A", "at risk", strings.Split(strings.Repeat("x,", storage.MaxForecastItems+1), ",")...),
			"long reason":    mark("A", "at risk", strings.Repeat("r", storage.MaxForecastText+1)),
			"no time":        {DeviceID: "A", Forecast: "at risk"},
			"invalid UTF-8":  mark("A", "at risk", "\xff"),
			"long device ID": mark(strings.Repeat("d", 300), "at risk"),
		} {
			if err := s.UpdateForecastMarks(ctx, []storage.ForecastMark{good, bad}, nil, []storage.WebhookDelivery{delivery("e")}); err == nil {
				t.Errorf("%s: accepted", name)
			}
		}
		badDelivery := delivery("e")
		badDelivery.Body = []byte("not json")
		if err := s.UpdateForecastMarks(ctx, []storage.ForecastMark{good}, nil, []storage.WebhookDelivery{badDelivery}); err == nil {
			t.Error("a delivery with a body that is not JSON: accepted")
		}
		if got, err := s.ForecastMarks(ctx); err != nil || len(got) != 0 {
			t.Fatalf("marks after refused updates = %+v, %v", got, err)
		}
		if due, err := s.DueWebhooks(ctx, t0.Add(time.Hour), 10); err != nil || len(due) != 0 {
			t.Fatalf("outbox after refused updates = %+v, %v", due, err)
		}
	})
}
