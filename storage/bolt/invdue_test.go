package bolt

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/mdm"
)

// TestUpgradeToSchema5 opens a file laid out by schema 4 (device records,
// no inventory index): the index is built at open from the records, and
// InventoryDue answers from it as before.
func TestUpgradeToSchema5(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sundial.db")
	s, err := Open(path, &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	devs := []*mdm.Device{
		{ID: "NEVER", Enabled: true},
		{ID: "OLD", Enabled: true, InventoryRequestedAt: t0.Add(-48 * time.Hour)},
		{ID: "RECENT", Enabled: true, InventoryRequestedAt: t0},
		{ID: "GONE", Enabled: false, InventoryRequestedAt: t0.Add(-72 * time.Hour)},
		{ID: "OLD:user", ParentID: "OLD", Enabled: true},
	}
	s = rewriteAsSchema(t, s, 4, func(tx *bbolt.Tx) error {
		for _, d := range devs {
			if err := putDevice(tx, d); err != nil {
				return err
			}
		}
		// Schema 4 had no index.
		for _, b := range [][]byte{bInvDue, bInvAt} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
		}
		return nil
	})
	ctx := context.Background()
	got, err := s.InventoryDue(ctx, t0.Add(-time.Hour), 0)
	if want := []string{"NEVER", "OLD"}; err != nil || !slices.Equal(got, want) {
		t.Fatalf("InventoryDue after upgrade = %v, %v; want %v", got, err, want)
	}
	got, _ = s.InventoryDue(ctx, t0.Add(time.Hour), 0)
	if want := []string{"NEVER", "OLD", "RECENT"}; !slices.Equal(got, want) {
		t.Fatalf("InventoryDue = %v; want %v", got, want)
	}
	// The upgraded index follows later writes.
	if err := s.MarkInventoryRequested(ctx, []string{"NEVER", "OLD"}, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, _ = s.InventoryDue(ctx, t0.Add(time.Hour), 0)
	if want := []string{"RECENT"}; !slices.Equal(got, want) {
		t.Fatalf("InventoryDue after mark = %v; want %v", got, want)
	}
	checkInventoryIndex(t, s)
}

// checkInventoryIndex compares the index with the device records: every
// enabled device enrollment appears once, under its request time, and
// nothing else appears.
func checkInventoryIndex(t *testing.T, s *Store) {
	t.Helper()
	err := s.db.View(func(tx *bbolt.Tx) error {
		want := map[string]string{}
		tx.Bucket(bDevices).ForEach(func(k, _ []byte) error {
			d, err := getDevice(tx, string(k))
			if err != nil {
				t.Fatal(err)
			}
			if d.Enabled && d.ParentID == "" {
				want[d.ID] = string(invTime(d.InventoryRequestedAt))
			}
			return nil
		})
		n := 0
		tx.Bucket(bInvDue).ForEach(func(k, _ []byte) error {
			n++
			id, at := string(k[8:]), string(k[:8])
			if w, ok := want[id]; !ok || w != at {
				t.Errorf("index holds %s at %x; want %x (indexed %v)", id, at, w, ok)
			}
			if got := string(tx.Bucket(bInvAt).Get([]byte(id))); got != at {
				t.Errorf("invat[%s] = %x, invdue holds %x", id, got, at)
			}
			return nil
		})
		if n != len(want) || tx.Bucket(bInvAt).Stats().KeyN != len(want) {
			t.Errorf("index holds %d (invat %d) entries, want %d", n, tx.Bucket(bInvAt).Stats().KeyN, len(want))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestInvTime(t *testing.T) {
	if got := invTime(time.Time{}); string(got) != string(make([]byte, 8)) {
		t.Errorf("zero time = %x", got)
	}
	if got := invTime(time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)); string(got) != string(make([]byte, 8)) {
		t.Errorf("1960 = %x", got)
	}
	a := invTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	b := invTime(time.Date(2026, 1, 1, 0, 0, 0, 1, time.UTC))
	far := invTime(time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC))
	if !(string(a) < string(b) && string(b) < string(far)) {
		t.Errorf("keys out of order: %x %x %x", a, b, far)
	}
}
