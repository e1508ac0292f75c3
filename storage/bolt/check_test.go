package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/bbolt"
)

// filledFile writes a database with enough data for several pages and
// closes it.
func filledFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sundial.db")
	s, err := Open(path, &Options{PageSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	err = s.db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("filler"))
		if err != nil {
			return err
		}
		for i := range 3000 {
			if err := b.Put(fmt.Appendf(nil, "key-%05d", i), []byte(strings.Repeat("v", 100))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func patch(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func TestCheckHealthyFile(t *testing.T) {
	path := filledFile(t)
	r, err := Check(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Problems) > 0 || len(r.Warnings) > 0 || r.Keys < 3000 || r.PageSize != 4096 || r.Pages < 10 || r.Err() != nil {
		t.Fatalf("healthy file: %s", r)
	}
	// A file that does not exist yet is fine for Open, which creates it.
	if r, err := CheckFile(filepath.Join(t.TempDir(), "new.db")); err != nil || r.Err() != nil {
		t.Errorf("CheckFile(new) = %v, %v", r, err)
	}
}

func TestOpenRefusesTruncatedFile(t *testing.T) {
	path := filledFile(t)
	r, err := CheckFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, int64(r.Pages/2)*int64(r.PageSize)); err != nil {
		t.Fatal(err)
	}
	_, err = Open(path, nil)
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "truncated") || !strings.Contains(err.Error(), "To restore") ||
		!strings.Contains(err.Error(), "sundial storage check --file "+path) {
		t.Fatalf("Open(truncated) = %v", err)
	}
	if r, err := Check(t.Context(), path); err != nil || !strings.Contains(r.String(), "damaged: the file is") {
		t.Errorf("Check(truncated) = %v, %v", r, err)
	}
}

func TestOneDamagedMetaPageIsReportedAndRepaired(t *testing.T) {
	path := filledFile(t)
	before, err := CheckFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Damage the meta page the newest transaction did not write.
	older := int64(1 - before.TxID%2)
	patch(t, path, older*int64(before.PageSize)+pageHeader+20, []byte("garbage!"))
	r, err := CheckFile(path)
	if err != nil || r.Err() != nil || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], fmt.Sprintf("meta page %d is damaged", older)) {
		t.Fatalf("one damaged meta page: %v, %v", r, err)
	}
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Warnings()) != 1 {
		t.Errorf("store warnings = %v", s.Warnings())
	}
	for range 2 { // commits alternate between the meta pages
		if err := s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket([]byte("filler")).Put([]byte("k"), []byte("v")) }); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	if r, err := CheckFile(path); err != nil || len(r.Warnings) != 0 || len(r.Problems) != 0 {
		t.Errorf("after two commits: %v, %v", r, err)
	}
}

func TestOpenRefusesBothMetaPagesDamaged(t *testing.T) {
	path := filledFile(t)
	patch(t, path, pageHeader, []byte("garbage!"))
	patch(t, path, 4096+pageHeader, []byte("garbage!"))
	if _, err := Open(path, nil); !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "both meta pages are damaged") {
		t.Fatalf("Open = %v", err)
	}
}

func TestCheckFindsDamagedPage(t *testing.T) {
	path := filledFile(t)
	r, err := CheckFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Give the first leaf page flags no page has, as a torn write could.
	damaged := false
	for id := uint64(2); id < r.Pages; id++ {
		off := int64(id) * int64(r.PageSize)
		if binary.LittleEndian.Uint16(raw[off+8:]) == 0x02 {
			patch(t, path, off+8, []byte{0x40, 0})
			damaged = true
			break
		}
	}
	if !damaged {
		t.Fatal("no leaf page found")
	}
	r, err = Check(t.Context(), path)
	if err != nil || r.Err() == nil || !errors.Is(r.Err(), ErrDamaged) {
		t.Fatalf("Check(damaged page) = %v, %v", r, err)
	}
	// The server's background check finds it too, without crashing.
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, _, err := s.CheckConsistency(t.Context()); !errors.Is(err, ErrDamaged) {
		t.Errorf("CheckConsistency = %v", err)
	}
}

func TestCheckRefusesFileInUse(t *testing.T) {
	path := filledFile(t)
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Check(t.Context(), path); !errors.Is(err, ErrLocked) {
		t.Errorf("Check(in use) = %v", err)
	}
}

func TestOpenRefusesDamagedPages(t *testing.T) {
	path := filledFile(t)
	r, err := CheckFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for id := uint64(2); id < r.Pages; id++ {
		off := int64(id) * int64(r.PageSize)
		if f := binary.LittleEndian.Uint16(raw[off+8:]); f == 0x01 || f == 0x02 {
			patch(t, path, off+8, []byte{0x40, 0})
		}
	}
	if _, err := Open(path, nil); !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "To restore") {
		t.Fatalf("Open(damaged pages) = %v", err)
	}
}
