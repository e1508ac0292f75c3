package bolt

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/push"
	"github.com/sundial-mdm/sundial/storage"
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
			if err := putDevice(tx, d, nil); err != nil {
				return err
			}
		}
		// Schema 4 had no index.
		return tx.DeleteBucket(bInvDue)
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
			return nil
		})
		if n != len(want) {
			t.Errorf("index holds %d entries, want %d", n, len(want))
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

// TestUpgradeToSchema8 opens a schema 7 file, which kept the reverse index
// invat: the bucket is dropped at open, and the index still answers and
// follows later writes.
func TestUpgradeToSchema8(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sundial.db")
	s, err := Open(path, &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	devs := []*mdm.Device{
		{ID: "OLD", Enabled: true, InventoryRequestedAt: t0.Add(-48 * time.Hour)},
		{ID: "RECENT", Enabled: true, InventoryRequestedAt: t0},
	}
	s = rewriteAsSchema(t, s, 7, func(tx *bbolt.Tx) error {
		at, err := tx.CreateBucket(bInvAt)
		if err != nil {
			return err
		}
		for _, d := range devs {
			if err := putDevice(tx, d, nil); err != nil {
				return err
			}
			if err := at.Put([]byte(d.ID), invKey(d)); err != nil {
				return err
			}
		}
		return nil
	})
	err = s.db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(bInvAt) != nil {
			t.Error("invat kept after upgrade to schema 8")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if got, err := s.InventoryDue(ctx, t0.Add(-time.Hour), 0); err != nil || !slices.Equal(got, []string{"OLD"}) {
		t.Fatalf("InventoryDue after upgrade = %v, %v; want [OLD]", got, err)
	}
	if err := s.MarkInventoryRequested(ctx, []string{"OLD"}, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.InventoryDue(ctx, t0.Add(30*time.Minute), 0); !slices.Equal(got, []string{"RECENT"}) {
		t.Fatalf("InventoryDue after mark = %v; want [RECENT]", got)
	}
	checkInventoryIndex(t, s)
}

// TestInventoryIndexRandomWrites drives random sequences of every writer of
// device records and checks after each step that the index equals one
// rebuilt from the records.
func TestInventoryIndexRandomWrites(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	ids := []string{"D1", "D2", "D3", "D4"}
	now := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	devInfo, err := mdm.NewCommand("DeviceInformation", nil)
	if err != nil {
		t.Fatal(err)
	}
	for step := range 400 {
		now = now.Add(time.Duration(rng.IntN(3)) * time.Second) // some steps share a time
		id := ids[rng.IntN(len(ids))]
		msg := &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: id}, Topic: "t",
			Token: []byte("token"), PushMagic: "magic"}
		var op string
		switch rng.IntN(9) {
		case 0:
			op = "Authenticate"
			err = s.Authenticate(ctx, id, msg, "cert-"+id, now)
		case 1:
			op = "TokenUpdate"
			var onFirst *mdm.Command
			if rng.IntN(2) == 0 {
				cmd := *devInfo
				cmd.UUID = fmt.Sprintf("devinfo-%d", step)
				onFirst = &cmd
			}
			_, err = s.TokenUpdate(ctx, id, msg, onFirst, now)
		case 2:
			op = "TokenUpdate (user)"
			umsg := *msg
			umsg.UserID = "user"
			_, err = s.TokenUpdate(ctx, id+":user", &umsg, nil, now)
		case 3:
			op = "CheckOut"
			err = s.CheckOut(ctx, id, now)
		case 4:
			op = "MarkInventoryRequested"
			err = s.MarkInventoryRequested(ctx, []string{id}, now)
		case 5:
			op = "SetBootstrapToken"
			err = s.SetBootstrapToken(ctx, id, []byte("sealed"), now)
		case 6:
			op = "UpdateInventory"
			err = s.UpdateInventory(ctx, id, &mdm.Inventory{OSVersion: "15.1"}, now)
		case 7:
			op = "RecordPushes"
			err = s.RecordPushes(ctx, []push.Record{{EnrollmentID: id, At: now, Outcome: push.OutcomeBadToken}})
		case 8:
			op = "Authenticate (other cert)"
			err = s.Authenticate(ctx, id, msg, fmt.Sprintf("cert-%s-%d", id, step), now)
		}
		if err != nil && !errors.Is(err, storage.ErrNotFound) && !errors.Is(err, storage.ErrExists) {
			t.Fatalf("step %d: %s %s: %v", step, op, id, err)
		}
		checkInventoryIndex(t, s)
		if t.Failed() {
			t.Fatalf("step %d: index out of line after %s %s", step, op, id)
		}
	}
}

// TestInventoryIndexUndecodableRecord: Authenticate replaces a device record
// that cannot be decoded, and its old index entry goes with it.
func TestInventoryIndexUndecodableRecord(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	err = s.db.Update(func(tx *bbolt.Tx) error {
		for _, d := range []*mdm.Device{{ID: "A", Enabled: true}, {ID: "BAD", Enabled: true, InventoryRequestedAt: t0}} {
			if err := putDevice(tx, d, nil); err != nil {
				return err
			}
		}
		return tx.Bucket(bDevices).Put([]byte("BAD"), []byte("{not json"))
	})
	if err != nil {
		t.Fatal(err)
	}
	msg := &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: "BAD"}}
	if err := s.Authenticate(context.Background(), "BAD", msg, "cert", t0); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.InventoryDue(context.Background(), t0.Add(time.Hour), 0); !slices.Equal(got, []string{"A"}) {
		t.Fatalf("InventoryDue = %v; want [A]", got)
	}
	checkInventoryIndex(t, s)
}
