package bolt

import (
	"path/filepath"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/storagetest"
)

func TestWebhookOutboxConformance(t *testing.T) {
	storagetest.RunWebhookOutbox(t, func(t *testing.T) storage.WebhookOutbox {
		s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestWebhookEndpointsConformance(t *testing.T) {
	storagetest.RunWebhookEndpoints(t, func(t *testing.T) storagetest.WebhookStore {
		s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestWebhookCommitConformance(t *testing.T) {
	storagetest.RunWebhookCommit(t, func(t *testing.T) storagetest.WebhookCommitStore {
		s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestWebhookExceptionConformance(t *testing.T) {
	storagetest.RunWebhookException(t, func(t *testing.T) storagetest.WebhookExceptionStore {
		s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// txID is the id of the file's last committed transaction.
func txID(t *testing.T, s *Store) int {
	t.Helper()
	var id int
	if err := s.db.View(func(tx *bbolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestPruneWebhooksWritesOnlyToDrop: the worker prunes every minute, and
// most prunes find nothing; those must not commit (and fsync) a write.
func TestPruneWebhooksWritesOnlyToDrop(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	if err := s.EnqueueWebhooks(ctx, []storage.WebhookDelivery{{EventID: "e1", Endpoint: "ep", Type: "test", Body: []byte("{}"), Created: t0, NextAt: t0}}); err != nil {
		t.Fatal(err)
	}
	before := txID(t, s)
	if n, err := s.PruneWebhooks(ctx, t0.Add(-time.Hour), 10); err != nil || n != 0 {
		t.Fatalf("PruneWebhooks with nothing to drop = %d, %v", n, err)
	}
	if after := txID(t, s); after != before {
		t.Errorf("PruneWebhooks with nothing to drop committed: transaction %d → %d", before, after)
	}
	if n, err := s.PruneWebhooks(ctx, t0.Add(time.Hour), 10); err != nil || n != 1 {
		t.Fatalf("PruneWebhooks of an old delivery = %d, %v; want 1", n, err)
	}
	if due, err := s.DueWebhooks(ctx, t0.Add(time.Hour), 10); err != nil || len(due) != 0 {
		t.Errorf("outbox after the prune: %d due, %v", len(due), err)
	}
}

// TestDueWebhooksEmptyOutbox: the worker polls every 2 s; an outbox found
// empty is not read again until a delivery is added (or outboxRecheck
// passes), and a delivery added is due at the next poll.
func TestDueWebhooksEmptyOutbox(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	reads := func() int { return s.db.Stats().TxN }
	if due, err := s.DueWebhooks(ctx, now, 10); err != nil || len(due) != 0 {
		t.Fatalf("DueWebhooks on an empty outbox = %d, %v", len(due), err)
	}
	r0 := reads()
	for range 5 {
		now = now.Add(2 * time.Second)
		if due, err := s.DueWebhooks(ctx, now, 10); err != nil || len(due) != 0 {
			t.Fatalf("DueWebhooks on an empty outbox = %d, %v", len(due), err)
		}
	}
	if r := reads(); r != r0 {
		t.Errorf("%d read transactions for 5 polls of an empty outbox, want 0", r-r0)
	}
	if err := s.EnqueueWebhooks(ctx, []storage.WebhookDelivery{{EventID: "e1", Endpoint: "ep", Type: "test", Body: []byte("{}"), Created: now, NextAt: now}}); err != nil {
		t.Fatal(err)
	}
	if due, err := s.DueWebhooks(ctx, now, 10); err != nil || len(due) != 1 {
		t.Fatalf("DueWebhooks after an enqueue = %d, %v; want 1", len(due), err)
	}
	if err := s.AckWebhook(ctx, "e1", "ep"); err != nil {
		t.Fatal(err)
	}
	if due, err := s.DueWebhooks(ctx, now, 10); err != nil || len(due) != 0 {
		t.Fatalf("DueWebhooks after the ack = %d, %v", len(due), err)
	}
	r0 = reads()
	if _, err := s.DueWebhooks(ctx, now.Add(outboxRecheck), 10); err != nil {
		t.Fatal(err)
	}
	if r := reads(); r != r0+1 {
		t.Errorf("%d read transactions for a poll after outboxRecheck, want 1", r-r0)
	}
}
