package bolt

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/storage"
)

// checkWebhookDue fails t unless the due index holds exactly one entry per
// delivery in the outbox, under that delivery's NextAt.
func checkWebhookDue(t *testing.T, s *Store) {
	t.Helper()
	var want, have []string
	err := s.db.View(func(tx *bbolt.Tx) error {
		err := tx.Bucket(bWebhookOut).ForEach(func(k, v []byte) error {
			var d storage.WebhookDelivery
			if err := json.Unmarshal(v, &d); err != nil {
				return err
			}
			want = append(want, string(webhookDueKey(d.NextAt, k)))
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bWebhookDue).ForEach(func(k, v []byte) error {
			have = append(have, string(k))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	if !slices.Equal(have, want) {
		t.Fatalf("due index holds %q, want %q", have, want)
	}
}

func TestWebhookDueTimeOrder(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	times := []time.Time{{}, time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC), time.Unix(0, -1), time.Unix(0, 0), t0,
		t0.Add(time.Nanosecond), time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)}
	for i := 1; i < len(times); i++ {
		a, b := webhookDueTime(times[i-1]), webhookDueTime(times[i])
		// Only times out of int64 nanoseconds share a key with their
		// neighbours (the zero time and 1600 both sort first).
		if c := bytes.Compare(a, b); c > 0 || (c == 0 && i > 1) {
			t.Errorf("key of %v = %x, key of %v = %x: not in time order", times[i-1], a, times[i], b)
		}
	}
}

// TestWebhookDueIndexKept: every write to the outbox keeps the due index in
// step with it.
func TestWebhookDueIndexKept(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	mk := func(ev, ep string, created, next time.Time) storage.WebhookDelivery {
		return storage.WebhookDelivery{EventID: ev, Endpoint: ep, Type: "test", Body: []byte(`{}`), Created: created, NextAt: next}
	}
	for _, e := range []string{"a", "b"} {
		if err := s.PutWebhookEndpoint(ctx, storage.WebhookEndpoint{ID: e, URL: "https://x", Secret: []byte("s"), Created: t0}); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name string
		do   func() error
	}{
		{"enqueue", func() error {
			return s.EnqueueWebhooks(ctx, []storage.WebhookDelivery{mk("e1", "a", t0, t0), mk("e2", "a", t0, t0.Add(time.Minute)),
				mk("e3", "a", t0.Add(time.Hour), t0), mk("e1", "b", t0, t0), mk("e4", "b", t0.Add(time.Hour), t0.Add(time.Hour))})
		}},
		// Queued again with another NextAt: the stored delivery stays.
		{"enqueue again", func() error {
			return s.EnqueueWebhooks(ctx, []storage.WebhookDelivery{mk("e1", "a", t0, t0.Add(time.Hour))})
		}},
		{"retry later", func() error { return s.RetryWebhook(ctx, "e1", "a", 1, t0.Add(time.Minute), "x") }},
		{"retry earlier", func() error { return s.RetryWebhook(ctx, "e2", "a", 1, t0.Add(-time.Minute), "x") }},
		{"retry same time", func() error { return s.RetryWebhook(ctx, "e2", "a", 2, t0.Add(-time.Minute), "y") }},
		{"ack", func() error { return s.AckWebhook(ctx, "e1", "b") }},
		{"ack unknown", func() error { return s.AckWebhook(ctx, "e9", "b") }},
		{"once", func() error {
			_, err := s.EnqueueWebhooksOnce(ctx, []storage.WebhookOnceEvent{{ID: "o1", KeepUntil: t0.Add(time.Hour),
				Deliveries: []storage.WebhookDelivery{mk("o1", "a", t0.Add(time.Hour), t0.Add(2*time.Minute))}}})
			return err
		}},
		{"prune", func() error {
			n, err := s.PruneWebhooks(ctx, t0.Add(time.Minute), 2) // drops e1/a and e2/a
			if err == nil && n != 2 {
				t.Errorf("pruned %d, want 2", n)
			}
			return err
		}},
		{"delete endpoint", func() error { return s.DeleteWebhookEndpoint(ctx, "b") }},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		checkWebhookDue(t, s)
	}
	due, err := s.DueWebhooks(ctx, t0.Add(time.Hour), 0)
	if err != nil || len(due) != 2 || due[0].EventID != "e3" || due[1].EventID != "o1" {
		t.Fatalf("due at the end = %+v, %v; want e3/a, o1/a", due, err)
	}
}

// TestUpgradeToSchema9 opens a schema 8 file, whose outbox has no due
// index: Open builds it, and DueWebhooks finds the deliveries through it.
func TestUpgradeToSchema9(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	var ds []storage.WebhookDelivery
	for i, ev := range []string{"e5", "e1", "e4", "e2", "e3"} {
		ds = append(ds, storage.WebhookDelivery{EventID: ev, Endpoint: "a", Type: "test", Body: []byte(`{}`), Created: t0,
			NextAt: t0.Add(time.Duration(i%3) * time.Minute)})
	}
	if err := s.EnqueueWebhooks(ctx, ds); err != nil {
		t.Fatal(err)
	}
	if err := s.RetryWebhook(ctx, "e5", "a", 3, t0.Add(time.Hour), "x"); err != nil {
		t.Fatal(err)
	}
	s = rewriteAsSchema(t, s, 8, func(tx *bbolt.Tx) error { return tx.DeleteBucket(bWebhookDue) })
	checkWebhookDue(t, s)
	due, err := s.DueWebhooks(ctx, t0.Add(time.Minute), 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range due {
		got = append(got, d.EventID)
	}
	if want := []string{"e2", "e1", "e3"}; !slices.Equal(got, want) {
		t.Fatalf("due after the upgrade = %q, want %q", got, want)
	}
}
