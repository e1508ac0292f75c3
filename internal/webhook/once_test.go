package webhook_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/internal/webhook"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/bolt"
)

func putException(t *testing.T, f *fixture, scope scheduler.ExceptionScope, id string, expires time.Time) scheduler.ExceptionRecord {
	t.Helper()
	rec := scheduler.ExceptionRecord{Scope: scope, ID: id, CreatedAt: f.clk.Now(),
		Exception: softwareupdate.Exception{Exempt: true, Expires: expires, Reason: "travelling", GrantedBy: "admin"}}
	if err := f.store.PutException(t.Context(), rec, nil); err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestExceptionExpiringOnce: an exception expiring within the window is
// announced once, signed, across repeated checks after delivery; one
// further out is announced when it comes into the window, an expired one
// never, and an extended expiry again.
func TestExceptionExpiringOnce(t *testing.T) {
	f := newFixture(t)
	r := newReceiver(t, "s", f.clk)
	f.addEndpoint(t, "ops", r.srv.URL, "s", webhook.TypeExceptionExpiring)
	putException(t, f, scheduler.ScopeDevice, "D1", t0.Add(3*time.Hour))
	putException(t, f, scheduler.ScopeDevice, "D2", t0.Add(30*time.Hour))
	putException(t, f, scheduler.ScopeDevice, "D0", t0.Add(-time.Hour))

	check := func(want int) {
		t.Helper()
		n, err := webhook.CheckExpiring(t.Context(), f.store, f.clk.Now(), webhook.ExpiringWithin)
		if err != nil || n != want {
			t.Fatalf("CheckExpiring at %s = %d, %v; want %d", f.clk.Now(), n, err, want)
		}
		if err := f.w.Pass(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	check(1)
	check(0) // delivered and acknowledged: not queued again
	got, bad := r.got()
	if len(bad) != 0 || len(got) != 1 || got[0].Type != webhook.TypeExceptionExpiring {
		t.Fatalf("received %+v, refused %v", got, bad)
	}
	var rec scheduler.ExceptionRecord
	if err := json.Unmarshal(got[0].Data, &rec); err != nil || rec.ID != "D1" || rec.Scope != scheduler.ScopeDevice ||
		rec.Exception.Reason != "travelling" || !rec.Exception.Expires.Equal(t0.Add(3*time.Hour)) {
		t.Fatalf("data = %s (%v)", got[0].Data, err)
	}
	if !strings.HasPrefix(got[0].ID, webhook.TypeExceptionExpiring+":") {
		t.Fatalf("event ID %q is not deterministic", got[0].ID)
	}

	// Seven hours on, D2's exception is within 24 h.
	f.clk.Advance(7 * time.Hour)
	check(1)
	check(0)
	// D1's exception is extended: the new expiry is announced.
	putException(t, f, scheduler.ScopeDevice, "D1", f.clk.Now().Add(2*time.Hour))
	check(1)
	got, _ = r.got()
	if len(got) != 3 || got[1].Data == nil || !strings.Contains(string(got[1].Data), `"D2"`) {
		t.Fatalf("received %d events: %+v", len(got), got)
	}
	if got[2].ID == got[0].ID {
		t.Fatal("an extended expiry reused the first expiry's event ID")
	}
}

// TestExceptionExpiringNoEndpoint: with no subscriber nothing is recorded,
// so an endpoint added later in the window still gets the event.
func TestExceptionExpiringNoEndpoint(t *testing.T) {
	f := newFixture(t)
	putException(t, f, scheduler.ScopeDevice, "D1", t0.Add(3*time.Hour))
	if n, err := webhook.CheckExpiring(t.Context(), f.store, t0, webhook.ExpiringWithin); err != nil || n != 0 {
		t.Fatalf("no endpoint: %d %v", n, err)
	}
	r := newReceiver(t, "s", f.clk)
	f.addEndpoint(t, "late", r.srv.URL, "s", webhook.TypeExceptionExpiring)
	if n, err := webhook.CheckExpiring(t.Context(), f.store, t0.Add(time.Hour), webhook.ExpiringWithin); err != nil || n != 1 {
		t.Fatalf("endpoint added later: %d %v", n, err)
	}
}

// TestReleaseEventOnce: catalog.new_release has one ID per version and
// build, and EmitOnce queues it once even after it was delivered.
func TestReleaseEventOnce(t *testing.T) {
	f := newFixture(t)
	r := newReceiver(t, "s", f.clk)
	f.addEndpoint(t, "ops", r.srv.URL, "s")
	rel := catalog.Release{Version: catalog.MustParseVersion("26.4"), Build: "25E246", PostingDate: t0.Truncate(24 * time.Hour)}
	for range 3 {
		ev, err := webhook.ReleaseEvent(&rel, "gdmf", f.clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		if ev.ID != "catalog.new_release:26.4:25E246" {
			t.Fatalf("ID = %q", ev.ID)
		}
		if _, err := webhook.EmitOnce(t.Context(), f.store, []webhook.Event{ev}, t0.Add(webhook.ReleaseKeep)); err != nil {
			t.Fatal(err)
		}
		if err := f.w.Pass(t.Context()); err != nil {
			t.Fatal(err)
		}
		f.clk.Advance(time.Hour)
	}
	got, bad := r.got()
	if len(bad) != 0 || len(got) != 1 {
		t.Fatalf("received %d events, refused %v", len(got), bad)
	}
	var d webhook.ReleaseData
	if err := json.Unmarshal(got[0].Data, &d); err != nil || d.Version != "26.4" || d.Build != "25E246" || d.Source != "gdmf" || !d.PostingDate.Equal(rel.PostingDate) {
		t.Fatalf("data = %s (%v)", got[0].Data, err)
	}
}

// BenchmarkCheckExpiring: the leader's 5-minute check with 1,000 device
// exceptions expiring within the window, all already announced (the
// steady state), on a real bbolt file.
func BenchmarkCheckExpiring(b *testing.B) {
	s, err := bolt.Open(filepath.Join(b.TempDir(), "sundial.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := b.Context()
	if err := s.PutWebhookEndpoint(ctx, storage.WebhookEndpoint{ID: "ops", URL: "http://127.0.0.1:1/", Secret: []byte("sealed"), Created: t0}); err != nil {
		b.Fatal(err)
	}
	for i := range 1000 {
		rec := scheduler.ExceptionRecord{Scope: scheduler.ScopeDevice, ID: fmt.Sprintf("D%04d", i), CreatedAt: t0,
			Exception: softwareupdate.Exception{Exempt: true, Expires: t0.Add(time.Duration(i+1) * time.Minute), Reason: "r", GrantedBy: "admin"}}
		if err := s.PutException(ctx, rec, nil); err != nil {
			b.Fatal(err)
		}
	}
	if n, err := webhook.CheckExpiring(ctx, s, t0, webhook.ExpiringWithin); err != nil || n != 1000 {
		b.Fatalf("first check: %d %v", n, err)
	}
	b.Run("one-transaction", func(b *testing.B) {
		for b.Loop() {
			if n, err := webhook.CheckExpiring(ctx, s, t0, webhook.ExpiringWithin); err != nil || n != 0 {
				b.Fatalf("check: %d %v", n, err)
			}
		}
	})
	// What the check cost with a transaction per exception, for comparison.
	b.Run("transaction-per-exception", func(b *testing.B) {
		recs, err := s.Exceptions(ctx)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			for i := range recs {
				ev, err := webhook.ExpiringEvent(&recs[i], t0)
				if err != nil {
					b.Fatal(err)
				}
				if n, err := webhook.EmitOnce(ctx, s, []webhook.Event{ev}, t0.Add(48*time.Hour)); err != nil || n != 0 {
					b.Fatalf("emit: %d %v", n, err)
				}
			}
		}
	})
}
