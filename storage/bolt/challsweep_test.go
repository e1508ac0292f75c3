package bolt

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// TestUnusedChallengesSwept: one-time challenges that are never taken (a
// profile downloaded and not installed) are deleted after they expire, a
// batch per Take, and a valid one is never swept.
func TestUnusedChallengesSwept(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	start := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	const unused = challSweepBatch + 44
	for i := range unused {
		if err := s.PutChallenge(ctx, fmt.Sprintf("unused-%03d", i), start.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutChallenge(ctx, "valid", start.Add(10*time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Put again with a later expiry: the old due entry must not sweep it.
	if err := s.PutChallenge(ctx, "unused-000", start.Add(10*time.Hour)); err != nil {
		t.Fatal(err)
	}
	count := func() (chall, due int) {
		s.db.View(func(tx *bbolt.Tx) error {
			chall, due = tx.Bucket(bChall).Stats().KeyN, tx.Bucket(bChallDue).Stats().KeyN
			return nil
		})
		return
	}
	later := start.Add(2 * time.Hour)
	if ok, err := s.TakeChallenge(ctx, "nonexistent", later); err != nil || ok {
		t.Fatalf("take nonexistent = %v, %v", ok, err)
	}
	if c, d := count(); c != unused+1-challSweepBatch || d != c {
		t.Errorf("after one sweep: %d challenges, %d due entries; want %d of each", c, d, unused+1-challSweepBatch)
	}
	if ok, err := s.TakeChallenge(ctx, "nonexistent", later); err != nil || ok {
		t.Fatalf("take nonexistent = %v, %v", ok, err)
	}
	if c, d := count(); c != 2 || d != 2 {
		t.Errorf("after two sweeps: %d challenges, %d due entries; want the 2 still valid", c, d)
	}
	for _, key := range []string{"valid", "unused-000"} {
		if ok, err := s.TakeChallenge(ctx, key, later); err != nil || !ok {
			t.Errorf("take %s = %v, %v; want a valid challenge", key, ok, err)
		}
	}
	if c, d := count(); c != 0 || d != 0 {
		t.Errorf("at the end: %d challenges, %d due entries", c, d)
	}
}
