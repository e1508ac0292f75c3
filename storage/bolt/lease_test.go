package bolt

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/storagetest"
)

func TestLeaseConformance(t *testing.T) {
	storagetest.RunLease(t, func(t *testing.T) storage.LeaseStore {
		s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), &Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestLeaseNotKeptAcrossOpen: bbolt's file lock keeps other processes out,
// so leases live in memory; a server restarted after a crash takes the
// scheduler lease at once instead of waiting for the dead holder's to
// expire.
func TestLeaseNotKeptAcrossOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sundial.db")
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := s.AcquireLease(t.Context(), "scheduler", "old", time.Minute, now); err != nil || !ok {
		t.Fatalf("AcquireLease = %v, %v", ok, err)
	}
	if ok, err := s.AcquireLease(t.Context(), "scheduler", "other", time.Minute, now); err != nil || ok {
		t.Fatalf("AcquireLease by another holder while held = %v, %v; want refused", ok, err)
	}
	s.Close()
	s, err = Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ok, err := s.AcquireLease(t.Context(), "scheduler", "new", time.Minute, now); err != nil || !ok {
		t.Errorf("AcquireLease after reopening = %v, %v; want taken", ok, err)
	}
}
