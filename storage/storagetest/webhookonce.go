package storagetest

import (
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/storage"
)

// WebhookOnceStore is what RunWebhookOnce needs: the ledger and the
// outbox it writes to.
type WebhookOnceStore interface {
	storage.WebhookOnceStore
	storage.WebhookOutbox
}

// once queues one event and says whether it was new to the ledger.
func once(t *testing.T, s storage.WebhookOnceStore, id string, keep time.Time, ds []storage.WebhookDelivery) (bool, error) {
	n, err := s.EnqueueWebhooksOnce(t.Context(), []storage.WebhookOnceEvent{{ID: id, KeepUntil: keep, Deliveries: ds}})
	return n == 1, err
}

// RunWebhookOnce runs the conformance suite of storage.WebhookOnceStore.
func RunWebhookOnce(t *testing.T, newStore func(t *testing.T) WebhookOnceStore) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	mk := func(ev, ep string) storage.WebhookDelivery {
		return storage.WebhookDelivery{EventID: ev, Endpoint: ep, Type: "catalog.new_release", Created: t0,
			Body: []byte(`{"id":"` + ev + `"}`), NextAt: t0}
	}
	due := func(t *testing.T, s WebhookOnceStore) []storage.WebhookDelivery {
		t.Helper()
		ds, err := s.DueWebhooks(t.Context(), t0.Add(time.Hour), 100)
		if err != nil {
			t.Fatal(err)
		}
		return ds
	}

	t.Run("Batch", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		if n, err := s.EnqueueWebhooksOnce(ctx, nil); err != nil || n != 0 {
			t.Fatalf("empty batch: %d %v", n, err)
		}
		ev := func(id string) storage.WebhookOnceEvent {
			return storage.WebhookOnceEvent{ID: id, KeepUntil: t0.Add(time.Hour), Deliveries: []storage.WebhookDelivery{mk(id, "a")}}
		}
		if n, err := s.EnqueueWebhooksOnce(ctx, []storage.WebhookOnceEvent{ev("b1"), ev("b2")}); err != nil || n != 2 {
			t.Fatalf("first batch: %d %v", n, err)
		}
		if err := s.AckWebhook(ctx, "b1", "a"); err != nil {
			t.Fatal(err)
		}
		// b1 was delivered, b2 is pending: only b3 is new.
		if n, err := s.EnqueueWebhooksOnce(ctx, []storage.WebhookOnceEvent{ev("b1"), ev("b2"), ev("b3")}); err != nil || n != 1 {
			t.Fatalf("second batch: %d %v, want 1", n, err)
		}
		got := due(t, s)
		if len(got) != 2 || got[0].EventID+got[1].EventID != "b2b3" && got[0].EventID+got[1].EventID != "b3b2" {
			t.Fatalf("outbox = %+v", got)
		}
	})

	t.Run("OnceEvenAfterAck", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		first, err := once(t, s, "ev1", t0.Add(24*time.Hour), []storage.WebhookDelivery{mk("ev1", "a"), mk("ev1", "b")})
		if err != nil || !first {
			t.Fatalf("first enqueue: %v %v", first, err)
		}
		if got := due(t, s); len(got) != 2 {
			t.Fatalf("outbox after first enqueue: %d deliveries, want 2", len(got))
		}
		for _, ep := range []string{"a", "b"} {
			if err := s.AckWebhook(ctx, "ev1", ep); err != nil {
				t.Fatal(err)
			}
		}
		first, err = once(t, s, "ev1", t0.Add(24*time.Hour), []storage.WebhookDelivery{mk("ev1", "a")})
		if err != nil || first {
			t.Fatalf("second enqueue of a delivered event: first=%v err=%v", first, err)
		}
		if got := due(t, s); len(got) != 0 {
			t.Fatalf("a delivered event was queued again: %+v", got)
		}
	})

	t.Run("PruneForgets", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		for _, ev := range []string{"old", "new"} {
			keep := t0.Add(time.Hour)
			if ev == "new" {
				keep = t0.Add(48 * time.Hour)
			}
			if _, err := once(t, s, ev, keep, []storage.WebhookDelivery{mk(ev, "a")}); err != nil {
				t.Fatal(err)
			}
		}
		// Nothing has expired yet: nothing is pruned.
		if n, err := s.PruneWebhookOnce(ctx, t0); err != nil || n != 0 {
			t.Fatalf("prune before any expiry: %d %v, want 0", n, err)
		}
		if first, err := once(t, s, "old", t0.Add(time.Hour), nil); err != nil || first {
			t.Fatalf("ID kept by an early prune: first=%v err=%v", first, err)
		}
		n, err := s.PruneWebhookOnce(ctx, t0.Add(2*time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("prune: %d %v, want 1", n, err)
		}
		// The pruned ID may be emitted again; the kept one may not.
		if first, err := once(t, s, "old", t0.Add(72*time.Hour), nil); err != nil || !first {
			t.Fatalf("pruned ID: first=%v err=%v", first, err)
		}
		if first, err := once(t, s, "new", t0.Add(72*time.Hour), nil); err != nil || first {
			t.Fatalf("kept ID: first=%v err=%v", first, err)
		}
	})

	t.Run("BadInputChangesNothing", func(t *testing.T) {
		s := newStore(t)
		long := string(make([]byte, 65))
		bad := mk("ev2", "a")
		bad.Body = []byte("{")
		for name, call := range map[string]func() error{
			"empty ID": func() error { _, err := once(t, s, "", t0, nil); return err },
			"long ID":  func() error { _, err := once(t, s, long, t0, nil); return err },
			"other event": func() error {
				_, err := once(t, s, "ev2", t0, []storage.WebhookDelivery{mk("ev3", "a")})
				return err
			},
			"bad in batch": func() error {
				_, err := s.EnqueueWebhooksOnce(t.Context(), []storage.WebhookOnceEvent{{ID: "ev2", Deliveries: []storage.WebhookDelivery{mk("ev2", "a")}}, {ID: ""}})
				return err
			},
			"invalid body": func() error {
				_, err := once(t, s, "ev2", t0, []storage.WebhookDelivery{bad})
				return err
			},
		} {
			if call() == nil {
				t.Errorf("%s: accepted", name)
			}
		}
		if got := due(t, s); len(got) != 0 {
			t.Fatalf("refused calls queued %+v", got)
		}
		if first, err := once(t, s, "ev2", t0.Add(time.Hour), []storage.WebhookDelivery{mk("ev2", "a")}); err != nil || !first {
			t.Fatalf("refused calls recorded the ID: first=%v err=%v", first, err)
		}
	})
}

// CatalogAnnounceStore is what RunCatalogAnnounce needs.
type CatalogAnnounceStore interface {
	WebhookOnceStore
	storage.CatalogStore
	storage.CatalogAnnounceStore
}

// RunCatalogAnnounce runs the conformance suite of
// storage.CatalogAnnounceStore: a catalog change and its events are stored
// together, each event once, and a refused call stores neither.
func RunCatalogAnnounce(t *testing.T, newStore func(t *testing.T) CatalogAnnounceStore) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	ev := func(id string, eps ...string) storage.WebhookOnceEvent {
		e := storage.WebhookOnceEvent{ID: id, KeepUntil: t0.Add(24 * time.Hour)}
		for _, ep := range eps {
			e.Deliveries = append(e.Deliveries, storage.WebhookDelivery{EventID: id, Endpoint: ep, Type: "catalog.new_release",
				Created: t0, Body: []byte(`{"id":"` + id + `"}`), NextAt: t0})
		}
		return e
	}
	due := func(t *testing.T, s CatalogAnnounceStore) map[string]bool {
		t.Helper()
		ds, err := s.DueWebhooks(t.Context(), t0.Add(time.Hour), 100)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, d := range ds {
			out[d.EventID+"/"+d.Endpoint] = true
		}
		return out
	}

	t.Run("FeedWithEvents", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		if err := s.PutCatalogFeedAnnounced(ctx, "gdmf", []byte(`{"v":1}`), t0, []storage.WebhookOnceEvent{ev("r1", "a", "b"), ev("r2", "a")}); err != nil {
			t.Fatal(err)
		}
		if feeds, err := s.CatalogFeeds(ctx); err != nil || string(feeds["gdmf"]) != `{"v":1}` {
			t.Fatalf("feeds = %q, %v", feeds, err)
		}
		if got := due(t, s); len(got) != 3 || !got["r1/a"] || !got["r1/b"] || !got["r2/a"] {
			t.Fatalf("outbox = %v", got)
		}
		for _, k := range [][2]string{{"r1", "a"}, {"r1", "b"}, {"r2", "a"}} {
			if err := s.AckWebhook(ctx, k[0], k[1]); err != nil {
				t.Fatal(err)
			}
		}
		// The same releases again with a new one: only the new one is queued.
		if err := s.PutCatalogFeedAnnounced(ctx, "gdmf", []byte(`{"v":2}`), t0, []storage.WebhookOnceEvent{ev("r1", "a"), ev("r3", "a")}); err != nil {
			t.Fatal(err)
		}
		if got := due(t, s); len(got) != 1 || !got["r3/a"] {
			t.Fatalf("outbox after the second feed = %v", got)
		}
		if feeds, _ := s.CatalogFeeds(ctx); string(feeds["gdmf"]) != `{"v":2}` {
			t.Fatalf("feed not replaced: %q", feeds["gdmf"])
		}
	})

	t.Run("ManualWithEvent", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		if err := s.PutManualReleaseAnnounced(ctx, "26.4", []byte(`{"version":"26.4"}`), []storage.WebhookOnceEvent{ev("m1", "a")}); err != nil {
			t.Fatal(err)
		}
		if rels, err := s.ManualReleases(ctx); err != nil || len(rels) != 1 {
			t.Fatalf("manual releases = %q, %v", rels, err)
		}
		if got := due(t, s); len(got) != 1 || !got["m1/a"] {
			t.Fatalf("outbox = %v", got)
		}
		// An event already in the ledger is skipped; the ledger says so.
		if first, err := once(t, s, "m1", t0.Add(time.Hour), nil); err != nil || first {
			t.Fatalf("m1 not in the ledger: first=%v err=%v", first, err)
		}
	})

	t.Run("RefusedStoresNothing", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		bad := ev("x", "a")
		bad.Deliveries[0].Body = []byte("{")
		if err := s.PutCatalogFeedAnnounced(ctx, "gdmf", []byte(`{}`), t0, []storage.WebhookOnceEvent{ev("ok", "a"), bad}); err == nil {
			t.Fatal("a feed with an invalid event was stored")
		}
		if err := s.PutManualReleaseAnnounced(ctx, "26.4", []byte(`{}`), []storage.WebhookOnceEvent{ev("", "a")}); err == nil {
			t.Fatal("a release with an unnamed event was stored")
		}
		if feeds, _ := s.CatalogFeeds(ctx); len(feeds) != 0 {
			t.Fatalf("refused feed stored: %q", feeds)
		}
		if rels, _ := s.ManualReleases(ctx); len(rels) != 0 {
			t.Fatalf("refused release stored: %q", rels)
		}
		if got := due(t, s); len(got) != 0 {
			t.Fatalf("refused calls queued %v", got)
		}
		if first, err := once(t, s, "ok", t0.Add(time.Hour), nil); err != nil || !first {
			t.Fatalf("a refused call recorded its event: first=%v err=%v", first, err)
		}
	})
}
