package storagetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// RunWebhookOutbox runs the conformance suite of storage.WebhookOutbox.
func RunWebhookOutbox(t *testing.T, newStore func(t *testing.T) storage.WebhookOutbox) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	mk := func(ev, ep string, created time.Time) storage.WebhookDelivery {
		return storage.WebhookDelivery{EventID: ev, Endpoint: ep, Type: "device.phase_changed", Created: created,
			Body: []byte(`{"id":"` + ev + `"}`), NextAt: created}
	}
	ids := func(ds []storage.WebhookDelivery) string {
		s := ""
		for _, d := range ds {
			s += d.EventID + "/" + d.Endpoint + " "
		}
		return s
	}

	t.Run("EnqueueDueAckRetry", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		if got, err := s.DueWebhooks(ctx, t0, 10); err != nil || len(got) != 0 {
			t.Fatalf("empty outbox: %v %v", got, err)
		}
		ds := []storage.WebhookDelivery{mk("e1", "a", t0), mk("e1", "b", t0), mk("e2", "a", t0.Add(time.Minute))}
		if err := s.EnqueueWebhooks(ctx, ds); err != nil {
			t.Fatal(err)
		}
		// Re-enqueueing keeps the stored delivery (its attempts stay).
		if err := s.RetryWebhook(ctx, "e1", "a", 1, t0.Add(10*time.Second), "connection refused"); err != nil {
			t.Fatal(err)
		}
		if err := s.EnqueueWebhooks(ctx, ds[:1]); err != nil {
			t.Fatal(err)
		}
		got, err := s.DueWebhooks(ctx, t0, 10)
		if err != nil || ids(got) != "e1/b " {
			t.Fatalf("due at t0 = %q, %v", ids(got), err)
		}
		got, err = s.DueWebhooks(ctx, t0.Add(time.Hour), 10)
		if err != nil || ids(got) != "e1/b e1/a e2/a " {
			t.Fatalf("due later = %q, %v", ids(got), err)
		}
		if a := got[1]; a.Attempts != 1 || !a.NextAt.Equal(t0.Add(10*time.Second)) || a.LastErr != "connection refused" ||
			string(a.Body) != `{"id":"e1"}` || a.Type != "device.phase_changed" || !a.Created.Equal(t0) {
			t.Fatalf("retried delivery = %+v", a)
		}
		if got, _ := s.DueWebhooks(ctx, t0.Add(time.Hour), 2); len(got) != 2 {
			t.Fatalf("limit 2 gave %d", len(got))
		}
		if err := s.AckWebhook(ctx, "e1", "b"); err != nil {
			t.Fatal(err)
		}
		if err := s.AckWebhook(ctx, "e1", "b"); err != nil {
			t.Fatalf("second ack: %v", err)
		}
		if got, _ := s.DueWebhooks(ctx, t0.Add(time.Hour), 10); ids(got) != "e1/a e2/a " {
			t.Fatalf("after ack = %q", ids(got))
		}
		if err := s.RetryWebhook(ctx, "nope", "a", 1, t0, ""); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("retry unknown = %v, want ErrNotFound", err)
		}
	})

	t.Run("DueOrderLimitRetry", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		at := func(ev, ep string, d time.Duration) storage.WebhookDelivery {
			x := mk(ev, ep, t0)
			x.NextAt = t0.Add(d)
			return x
		}
		due := func(now time.Duration, limit int) string {
			t.Helper()
			got, err := s.DueWebhooks(ctx, t0.Add(now), limit)
			if err != nil {
				t.Fatal(err)
			}
			return ids(got)
		}
		// Enqueued out of order; due order is NextAt, then event ID, then
		// endpoint, and a NextAt equal to now is due.
		if err := s.EnqueueWebhooks(ctx, []storage.WebhookDelivery{at("e1", "b", 2*time.Second), at("e3", "a", time.Second),
			at("e1", "a", 2*time.Second), at("e2", "b", time.Second), at("e0", "c", 2*time.Second), at("e9", "a", time.Hour)}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			now   time.Duration
			limit int
			want  string
		}{
			{0, 10, ""},
			{time.Second, 10, "e2/b e3/a "},
			{2 * time.Second, 10, "e2/b e3/a e0/c e1/a e1/b "},
			{2 * time.Second, 3, "e2/b e3/a e0/c "},
			{time.Hour, 10, "e2/b e3/a e0/c e1/a e1/b e9/a "},
		} {
			if got := due(c.now, c.limit); got != c.want {
				t.Fatalf("due at t0+%v, limit %d = %q, want %q", c.now, c.limit, got, c.want)
			}
		}
		// A retry moves a delivery to its new due time, later or earlier.
		if err := s.RetryWebhook(ctx, "e2", "b", 1, t0.Add(90*time.Minute), "503"); err != nil {
			t.Fatal(err)
		}
		if err := s.RetryWebhook(ctx, "e9", "a", 1, t0, "503"); err != nil {
			t.Fatal(err)
		}
		if got, want := due(2*time.Second, 10), "e9/a e3/a e0/c e1/a e1/b "; got != want {
			t.Fatalf("due after the retries = %q, want %q", got, want)
		}
		if got, want := due(time.Hour, 10), "e9/a e3/a e0/c e1/a e1/b "; got != want {
			t.Fatalf("due before the retried e2/b = %q, want %q", got, want)
		}
		// A retry to the same time leaves one delivery, with the new attempts.
		if err := s.RetryWebhook(ctx, "e9", "a", 2, t0, "504"); err != nil {
			t.Fatal(err)
		}
		got, err := s.DueWebhooks(ctx, t0.Add(2*time.Hour), 10)
		if err != nil || ids(got) != "e9/a e3/a e0/c e1/a e1/b e2/b " {
			t.Fatalf("due after both retries = %q, %v", ids(got), err)
		}
		if got[0].Attempts != 2 || got[0].LastErr != "504" || got[5].Attempts != 1 || !got[5].NextAt.Equal(t0.Add(90*time.Minute)) {
			t.Fatalf("retried deliveries = %+v, %+v", got[0], got[5])
		}
		if err := s.AckWebhook(ctx, "e3", "a"); err != nil {
			t.Fatal(err)
		}
		if got, want := due(2*time.Hour, 2), "e9/a e0/c "; got != want {
			t.Fatalf("due after the ack = %q, want %q", got, want)
		}
	})

	t.Run("BadInputChangesNothing", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		bad := []storage.WebhookDelivery{mk("", "a", t0), mk("e", "", t0), {EventID: "e", Endpoint: "a", Type: "x", Body: []byte("{")},
			{EventID: "e", Endpoint: "a", Type: "x", Body: make([]byte, storage.MaxWebhookBody+1)}}
		for i, d := range bad {
			if err := s.EnqueueWebhooks(ctx, []storage.WebhookDelivery{mk("ok", "a", t0), d}); err == nil {
				t.Fatalf("bad delivery %d accepted", i)
			}
		}
		if got, _ := s.DueWebhooks(ctx, t0.Add(time.Hour), 10); len(got) != 0 {
			t.Fatalf("a refused batch left %q", ids(got))
		}
	})

	t.Run("Prune", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		var ds []storage.WebhookDelivery
		for i := range 5 {
			ds = append(ds, mk(fmt.Sprintf("a%d", i), "a", t0.Add(time.Duration(i)*time.Hour)))
		}
		ds = append(ds, mk("b0", "b", t0), mk("b1", "b", t0.Add(4*time.Hour)))
		if err := s.EnqueueWebhooks(ctx, ds); err != nil {
			t.Fatal(err)
		}
		// Older than t0+1h: a0 and b0; then endpoint a keeps its newest 2.
		n, err := s.PruneWebhooks(ctx, t0.Add(time.Hour), 2)
		if err != nil || n != 4 {
			t.Fatalf("pruned %d, %v; want 4", n, err)
		}
		if got, _ := s.DueWebhooks(ctx, t0.Add(time.Hour*24), 10); ids(got) != "a3/a a4/a b1/b " {
			t.Fatalf("kept %q", ids(got))
		}
		if n, err := s.PruneWebhooks(ctx, t0, 0); err != nil || n != 0 {
			t.Fatalf("second prune %d, %v", n, err)
		}
	})
}

// WebhookStore is both webhook interfaces, as every backend implements them.
type WebhookStore interface {
	storage.WebhookOutbox
	storage.WebhookEndpointStore
}

// RunWebhookEndpoints runs the conformance suite of
// storage.WebhookEndpointStore.
func RunWebhookEndpoints(t *testing.T, newStore func(t *testing.T) WebhookStore) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	t.Run("PutListDelete", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		if got, err := s.WebhookEndpoints(ctx); err != nil || len(got) != 0 {
			t.Fatalf("empty: %v %v", got, err)
		}
		a := storage.WebhookEndpoint{ID: "ops", URL: "https://hooks.example.com/a", Secret: []byte("sealed-a"), Created: t0}
		b := storage.WebhookEndpoint{ID: "chat", URL: "http://127.0.0.1:9/b", Events: []string{"device.failed"}, Secret: []byte("sealed-b"), Created: t0}
		for _, e := range []storage.WebhookEndpoint{a, b} {
			if err := s.PutWebhookEndpoint(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.WebhookEndpoints(ctx)
		if err != nil || !reflect.DeepEqual(got, []storage.WebhookEndpoint{b, a}) {
			t.Fatalf("endpoints = %+v, %v", got, err)
		}
		if !got[0].Wants("device.failed") || got[0].Wants("device.compliant") || !got[1].Wants("device.compliant") {
			t.Fatal("Wants disagrees with the subscription")
		}
		// Deleting an endpoint drops its pending deliveries, not others'.
		ds := []storage.WebhookDelivery{
			{EventID: "e1", Endpoint: "ops", Type: "x", Created: t0, Body: []byte(`{}`), NextAt: t0},
			{EventID: "e1", Endpoint: "chat", Type: "x", Created: t0, Body: []byte(`{}`), NextAt: t0},
		}
		if err := s.EnqueueWebhooks(ctx, ds); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteWebhookEndpoint(ctx, "ops"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteWebhookEndpoint(ctx, "ops"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("second delete = %v", err)
		}
		if due, _ := s.DueWebhooks(ctx, t0, 10); len(due) != 1 || due[0].Endpoint != "chat" {
			t.Fatalf("due after delete = %+v", due)
		}
		if got, _ := s.WebhookEndpoints(ctx); len(got) != 1 || got[0].ID != "chat" {
			t.Fatalf("after delete = %+v", got)
		}
	})
	t.Run("BadInputAndLimit", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		for i, e := range []storage.WebhookEndpoint{
			{ID: "", URL: "https://x", Secret: []byte("s")},
			{ID: "a", URL: "ftp://x", Secret: []byte("s")},
			{ID: "a", URL: "https://x"},
		} {
			if err := s.PutWebhookEndpoint(ctx, e); err == nil {
				t.Fatalf("bad endpoint %d accepted", i)
			}
		}
		for i := range storage.MaxWebhookEndpoints {
			if err := s.PutWebhookEndpoint(ctx, storage.WebhookEndpoint{ID: fmt.Sprintf("e%02d", i), URL: "https://x", Secret: []byte("s"), Created: t0}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.PutWebhookEndpoint(ctx, storage.WebhookEndpoint{ID: "one-too-many", URL: "https://x", Secret: []byte("s"), Created: t0}); !errors.Is(err, storage.ErrWebhookLimit) {
			t.Fatalf("over the limit = %v", err)
		}
		// Replacing an existing one is not a new one.
		if err := s.PutWebhookEndpoint(ctx, storage.WebhookEndpoint{ID: "e00", URL: "https://y", Secret: []byte("s2"), Created: t0}); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.WebhookEndpoints(ctx); len(got) != storage.MaxWebhookEndpoints || got[0].URL != "https://y" {
			t.Fatalf("after replace: %d endpoints, first %+v", len(got), got[0])
		}
	})
}

// WebhookCommitStore is a backend's webhook side and its scheduler commit.
type WebhookCommitStore interface {
	WebhookStore
	Commit(ctx context.Context, commits []scheduler.Commit, now time.Time) error
}

// RunWebhookCommit checks that a scheduler commit writes its events to the
// outbox in the same transaction: a phase change to compliant queues
// device.phase_changed and device.compliant for each subscribed endpoint, a
// refused commit queues nothing, and with no endpoint nothing is queued.
func RunWebhookCommit(t *testing.T, newStore func(t *testing.T) WebhookCommitStore) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	change := func(st *scheduler.State, from, to softwareupdate.Phase) scheduler.Commit {
		return scheduler.Commit{State: st, History: []scheduler.Transition{{At: t0, Kind: scheduler.EventPhase, From: from, To: to, Reason: "r"}}}
	}
	types := func(ds []storage.WebhookDelivery) map[string]int {
		m := map[string]int{}
		for _, d := range ds {
			m[d.Endpoint+" "+d.Type]++
		}
		return m
	}
	s := newStore(t)
	ctx := t.Context()
	// No endpoint: nothing is queued.
	if err := s.Commit(ctx, []scheduler.Commit{change(&scheduler.State{DeviceID: "W0"}, softwareupdate.PhasePending, softwareupdate.PhaseNotify)}, t0); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.DueWebhooks(ctx, t0.Add(time.Hour), 100); len(due) != 0 {
		t.Fatalf("queued %d with no endpoint", len(due))
	}
	for _, e := range []storage.WebhookEndpoint{
		{ID: "all", URL: "https://a", Secret: []byte("s"), Created: t0},
		{ID: "fails", URL: "https://b", Events: []string{"device.failed"}, Secret: []byte("s"), Created: t0},
	} {
		if err := s.PutWebhookEndpoint(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	w1 := &scheduler.State{DeviceID: "W1"}
	if err := s.Commit(ctx, []scheduler.Commit{
		change(w1, softwareupdate.PhaseEnforce, softwareupdate.PhaseCompliant),
		{State: &scheduler.State{DeviceID: "W2"}, History: []scheduler.Transition{{At: t0, Kind: scheduler.EventStep, Step: "ddm"}}},
	}, t0); err != nil {
		t.Fatal(err)
	}
	due, err := s.DueWebhooks(ctx, t0.Add(time.Hour), 100)
	want := map[string]int{"all device.phase_changed": 1, "all device.compliant": 1}
	if err != nil || !reflect.DeepEqual(types(due), want) {
		t.Fatalf("queued %v, %v; want %v", types(due), err, want)
	}
	if !strings.Contains(string(due[0].Body), `"device_id":"W1"`) {
		t.Fatalf("body %s", due[0].Body)
	}
	// A stale commit (W1 is at rev 1 now) is refused and queues nothing.
	err = s.Commit(ctx, []scheduler.Commit{change(&scheduler.State{DeviceID: "W1"}, softwareupdate.PhaseCompliant, softwareupdate.PhaseFailed)}, t0)
	if !errors.Is(err, scheduler.ErrConflict) {
		t.Fatalf("stale commit = %v", err)
	}
	if after, _ := s.DueWebhooks(ctx, t0.Add(time.Hour), 100); len(after) != len(due) {
		t.Fatalf("a refused commit queued %d events", len(after)-len(due))
	}
	w1.Rev = 1
	if err := s.Commit(ctx, []scheduler.Commit{change(w1, softwareupdate.PhaseCompliant, softwareupdate.PhaseFailed)}, t0); err != nil {
		t.Fatal(err)
	}
	due, _ = s.DueWebhooks(ctx, t0.Add(time.Hour), 100)
	want = map[string]int{"all device.phase_changed": 2, "all device.compliant": 1, "all device.failed": 1, "fails device.failed": 1}
	if !reflect.DeepEqual(types(due), want) {
		t.Fatalf("queued %v; want %v", types(due), want)
	}
}

// WebhookExceptionStore is a backend's webhook side and its exception store.
type WebhookExceptionStore interface {
	WebhookStore
	PutException(ctx context.Context, rec scheduler.ExceptionRecord, audit *scheduler.AuditEntry) error
}

// RunWebhookException checks that granting an exception queues an
// exception.granted event in the same transaction, to subscribed endpoints
// only, and that a refused grant queues nothing.
func RunWebhookException(t *testing.T, newStore func(t *testing.T) WebhookExceptionStore) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	s := newStore(t)
	ctx := t.Context()
	for _, e := range []storage.WebhookEndpoint{
		{ID: "exc", URL: "https://a", Events: []string{"exception.granted"}, Secret: []byte("s"), Created: t0},
		{ID: "fails", URL: "https://b", Events: []string{"device.failed"}, Secret: []byte("s"), Created: t0},
	} {
		if err := s.PutWebhookEndpoint(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	rec := scheduler.ExceptionRecord{Scope: scheduler.ScopeDevice, ID: "X1", CreatedAt: t0,
		Exception: softwareupdate.Exception{Exempt: true, Expires: t0.Add(72 * time.Hour), Reason: "travelling"}}
	if err := s.PutException(ctx, rec, nil); err != nil {
		t.Fatal(err)
	}
	// A group that does not exist: refused, nothing queued.
	bad := rec
	bad.Scope, bad.ID = scheduler.ScopeGroup, "no-such-group"
	if err := s.PutException(ctx, bad, nil); err == nil {
		t.Fatal("exception for an unknown group accepted")
	}
	due, err := s.DueWebhooks(ctx, t0.Add(time.Hour), 100)
	if err != nil || len(due) != 1 || due[0].Endpoint != "exc" || due[0].Type != "exception.granted" {
		t.Fatalf("queued %+v, %v", due, err)
	}
	if b := string(due[0].Body); !strings.Contains(b, `"id":"X1"`) || !strings.Contains(b, `"travelling"`) {
		t.Fatalf("body %s", b)
	}
}
