package bolt

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// TestGovernorBoundsMappedMemory reads a 48 MB database end to end with a
// small budget: the mapped pages are dropped as the scan goes, and every
// value still reads back intact afterwards.
func TestGovernorBoundsMappedMemory(t *testing.T) {
	if !canRelease {
		t.Skip("the mapping governor only runs on Linux")
	}
	s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), &Options{NoSync: true, MappedBudget: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n, size = 12_000, 4000
	val := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, size) }
	for start := 0; start < n; start += 1000 {
		if err := s.db.Update(func(tx *bbolt.Tx) error {
			b := tx.Bucket(bDevices)
			for i := start; i < start+1000; i++ {
				if err := b.Put(fmt.Appendf(nil, "D%06d", i), val(i)); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	base := fileRSS()
	var peak int64
	read := func() {
		err := s.db.View(func(tx *bbolt.Tx) error {
			c := tx.Bucket(bDevices).Cursor()
			i := 0
			for k, v := c.First(); k != nil; k, v = c.Next() {
				if !bytes.Equal(v, val(i)) {
					return fmt.Errorf("value %s differs after release", k)
				}
				i++
				if i%500 == 0 {
					peak = max(peak, fileRSS())
					time.Sleep(governorInterval / 4) // let the governor sample
				}
			}
			if i != n {
				return fmt.Errorf("read %d values, want %d", i, n)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// The first scan holds one read transaction for its whole length:
	// releases happen under it.
	read()
	read()
	if s.gov.releases.Load() == 0 {
		t.Fatal("the governor never dropped the mapping")
	}
	// 48 MB were read twice; the mapped part stays near the budget (plus
	// what a scan maps between two samples).
	if grown := peak - base; grown > 32<<20 {
		t.Fatalf("file-backed RSS grew by %d MB during the scans, budget 8 MB", grown>>20)
	}
	t.Logf("file-backed RSS: %d MB before, peak %d MB, %d releases", base>>20, peak>>20, s.gov.releases.Load())
}

// TestGovernorOff: a negative budget starts no governor.
func TestGovernorOff(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), &Options{NoSync: true, MappedBudget: -1})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.gov.done:
	default:
		t.Fatal("governor running with a negative budget")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
