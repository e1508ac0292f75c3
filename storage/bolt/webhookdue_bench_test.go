package bolt

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/storage"
)

// benchBacklog is the outbox of two endpoints whose receivers have been
// down for a day: 20,000 deliveries (10,000 each, the worker's default cap
// per endpoint), backing off into the next hour, of which 10 are due.
func benchBacklog(b *testing.B) (*Store, time.Time) {
	s, err := Open(filepath.Join(b.TempDir(), "sundial.db"), &Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	now, ds := backlogDeliveries()
	if err := s.EnqueueWebhooks(b.Context(), ds); err != nil {
		b.Fatal(err)
	}
	return s, now
}

func backlogDeliveries() (time.Time, []storage.WebhookDelivery) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	ds := make([]storage.WebhookDelivery, 20000)
	for i := range ds {
		id := fmt.Sprintf("%016x", uint64(i/2)*0x9e3779b97f4a7c15) // hashed IDs, as webhook.Deliveries makes
		next := now.Add(time.Duration(1+i%3600) * time.Second)
		if i%(len(ds)/10) == 0 {
			next = now.Add(-time.Duration(i) * time.Millisecond)
		}
		ds[i] = storage.WebhookDelivery{EventID: id, Endpoint: []string{"ops", "chat"}[i%2], Type: "device.at_risk", Created: now.Add(-24 * time.Hour),
			Body:     fmt.Appendf(nil, `{"id":%q,"type":"device.at_risk","created":"2026-11-30T09:00:00Z","data":{"device_id":"%08X-%016X","serial":"C02X%06d","group":"engineering","phase":"enforce","deadline":"2026-12-02T17:00:00Z","os_version":"15.1","target":"15.2"}}`, id, i/2, i/2, i/2),
			Attempts: 9, NextAt: next, LastErr: `Post "https://hooks.example.com/sundial": dial tcp 10.0.0.9:443: connect: connection refused`}
	}
	return now, ds
}

// BenchmarkDueWebhooks is the worker's poll (every 2 s, limit 100, its
// default batch) of that backlog.
func BenchmarkDueWebhooks(b *testing.B) {
	s, now := benchBacklog(b)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		got, err := s.DueWebhooks(ctx, now, 100)
		if err != nil || len(got) != 10 {
			b.Fatalf("DueWebhooks = %d, %v; want 10", len(got), err)
		}
	}
}

// BenchmarkPruneWebhooksNone is the worker's prune (every minute, the
// defaults: 7 days, 10,000 per endpoint) of that backlog, which drops
// nothing.
func BenchmarkPruneWebhooksNone(b *testing.B) {
	s, now := benchBacklog(b)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if n, err := s.PruneWebhooks(ctx, now.Add(-7*24*time.Hour), 10000); err != nil || n != 0 {
			b.Fatalf("PruneWebhooks = %d, %v; want 0", n, err)
		}
	}
}

// BenchmarkEnqueueWebhooks20k queues that backlog into an empty outbox in
// one call: what the index costs the writers.
func BenchmarkEnqueueWebhooks20k(b *testing.B) {
	_, ds := backlogDeliveries()
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		s, err := Open(filepath.Join(b.TempDir(), "sundial.db"), &Options{NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := s.EnqueueWebhooks(ctx, ds); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
}
