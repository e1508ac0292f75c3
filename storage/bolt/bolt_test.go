package bolt

import (
	"errors"
	"fmt"
	bbolt "go.etcd.io/bbolt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.All {
		path := filepath.Join(t.TempDir(), "sundial.db")
		s, err := Open(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Whatever a test did to the devices, the inventory index in
		// the file still matches their records. (Cleanups run last
		// first: this one runs after the suite has closed s.)
		t.Cleanup(func() {
			s, err := Open(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			checkInventoryIndex(t, s)
		})
		return s
	})
}

// TestConformance4K runs the suite on a file with the 4 KB pages of files
// created before DefaultPageSize was 16 KB.
func TestConformance4K(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.All {
		s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), &Options{PageSize: 4096})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestPageSize: a new file gets DefaultPageSize; an existing file keeps
// its own, whatever the options say; a bad size is refused before any
// file is created.
func TestPageSize(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(filepath.Join(dir, "new.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.PageSize(); got != DefaultPageSize {
		t.Errorf("new file: page size %d, want %d", got, DefaultPageSize)
	}
	s.Close()

	old := filepath.Join(dir, "old.db")
	s, err = Open(old, &Options{PageSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutAPIKey(t.Context(), storage.APIKey{ID: "k", Hash: "h"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(old, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.PageSize(); got != 4096 {
		t.Errorf("reopened 4 KB file: page size %d, want 4096", got)
	}
	if _, err := s.APIKeyByHash(t.Context(), "h"); err != nil {
		t.Errorf("reopened 4 KB file: %v", err)
	}
	s.Close()

	for _, size := range []int{1024, 4095, 6144, 128 << 10, -1} {
		path := filepath.Join(dir, fmt.Sprintf("bad-%d.db", size))
		if s, err := Open(path, &Options{PageSize: size}); err == nil {
			s.Close()
			t.Errorf("page size %d accepted", size)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("page size %d: file created (%v)", size, err)
		}
	}
}

func TestSecondOpenFailsFast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sundial.db")
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	_, err = Open(path, &Options{LockTimeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open err = %v, want ErrLocked", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("second open took %v", d)
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sundial.db")
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutAPIKey(t.Context(), storage.APIKey{ID: "k", Hash: "h"}); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(t.TempDir(), "backup.db")
	if err := s.Backup(backup); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, p := range []string{path, backup} {
		s, err := Open(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.APIKeyByHash(t.Context(), "h"); err != nil {
			t.Errorf("%s: %v", p, err)
		}
		s.Close()
	}
}

func TestAgentConformance(t *testing.T) {
	storagetest.RunAgent(t, func(t *testing.T) storagetest.AgentBackend {
		s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// rewriteAsSchema lays s's file out as an older schema did: rewrite
// changes the buckets, the file is marked with that schema version, and
// the store is closed and opened again, which runs the upgrade.
func rewriteAsSchema(t *testing.T, s *Store, schema uint64, rewrite func(tx *bbolt.Tx) error) *Store {
	t.Helper()
	path := s.Path()
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if err := rewrite(tx); err != nil {
			return err
		}
		return tx.Bucket(bMeta).Put([]byte("schema"), u64(schema))
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(path, &Options{NoSync: true})
	if err != nil {
		t.Fatalf("open after rewriting as schema %d: %v", schema, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestADEConformance(t *testing.T) {
	storagetest.RunADE(t, func(t *testing.T) storagetest.ADEBackend {
		s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
