package bolt

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/mdm"
)

// TestUpgradeToSchema3 lays a file out as schema 2 did (command records,
// bodies and results under <enrollment> 0x00 <seq>) and opens it: every
// command reads back as before, the queue still delivers, and new commands
// continue the old sequence. The upgrade runs in several transactions and
// resumes one that was interrupted.
func TestUpgradeToSchema3(t *testing.T) {
	defer func(n int) { migrateChunk = n }(migrateChunk)
	migrateChunk = 2

	ctx := t.Context()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "sundial.db")
	s, err := Open(path, &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{"B-DEVICE", "A-DEVICE"}
	for _, id := range ids {
		if err := s.Authenticate(ctx, id, &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: id}, Topic: "com.apple.mgmt.test"}, "hash-"+id, now); err != nil {
			t.Fatal(err)
		}
	}
	var uuids []string
	for i := range 3 {
		for _, id := range ids {
			cmd, err := mdm.NewCommand("DeviceInformation", map[string]any{"Queries": mdm.InventoryQueries, "N": i})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Enqueue(ctx, []string{id}, cmd, now); err != nil {
				t.Fatal(err)
			}
			if id == "A-DEVICE" {
				uuids = append(uuids, cmd.UUID)
			}
		}
	}
	// A-DEVICE answers its first command.
	result := []byte(`<?xml version="1.0"?><plist version="1.0"><dict><key>Status</key><string>Acknowledged</string></dict></plist>`)
	if _, _, err := s.StoreReportAndNext(ctx, "A-DEVICE", &mdm.Report{Enrollment: mdm.Enrollment{UDID: "A-DEVICE"}, Status: mdm.Acknowledged, CommandUUID: uuids[0]}, result, now); err != nil {
		t.Fatal(err)
	}
	before, err := s.Commands(ctx, "A-DEVICE")
	if err != nil || len(before) != 3 {
		t.Fatalf("Commands = %d, %v", len(before), err)
	}

	// Rewrite the file in the schema 2 layout.
	s = rewriteAsSchema(t, s, 2, func(tx *bbolt.Tx) error {
		pairs := []struct{ from, to []byte }{{bCmds, bCmdsV2}, {bCmdRaw, bCmdRawV2}, {bCmdRes, bCmdResV2}}
		owner := map[string]string{}
		if err := tx.Bucket(bCmds).ForEach(func(k, v []byte) error {
			rec, err := decodeRecord(v)
			if err != nil {
				return err
			}
			owner[string(k)] = rec.EnrollmentID
			return nil
		}); err != nil {
			return err
		}
		for _, p := range pairs {
			old, err := tx.CreateBucket(p.to)
			if err != nil {
				return err
			}
			if err := old.SetSequence(tx.Bucket(p.from).Sequence()); err != nil {
				return err
			}
			if err := tx.Bucket(p.from).ForEach(func(k, v []byte) error {
				return old.Put(key(owner[string(k)], clone(k)), clone(v))
			}); err != nil {
				return err
			}
			if err := tx.DeleteBucket(p.from); err != nil {
				return err
			}
		}
		// An upgrade interrupted after its first transaction: one record
		// already moved (the new buckets exist, as Open creates them).
		recs, err := tx.CreateBucket(bCmds)
		if err != nil {
			return err
		}
		c := tx.Bucket(bCmdsV2).Cursor()
		k, v := c.First()
		k, v = clone(k), clone(v)
		if err := recs.Put(k[len(k)-8:], v); err != nil {
			return err
		}
		return tx.Bucket(bCmdsV2).Delete(k)
	})
	s.db.View(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bCmdsV2, bCmdRawV2, bCmdResV2} {
			if tx.Bucket(b) != nil {
				t.Errorf("bucket %s left behind", b)
			}
		}
		if n := tx.Bucket(bCmds).Stats().KeyN; n != 6 {
			t.Errorf("%d command records after the upgrade, want 6", n)
		}
		return nil
	})
	after, err := s.Commands(ctx, "A-DEVICE")
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("%d commands after the upgrade, want %d", len(after), len(before))
	}
	for i := range after {
		a, b := after[i], before[i]
		if a.UUID != b.UUID || a.Seq != b.Seq || a.Status != b.Status || string(a.Raw) != string(b.Raw) || string(a.Result) != string(b.Result) {
			t.Errorf("command %d: %+v, want %+v", i, a, b)
		}
	}
	// The queue still delivers the next command, body included.
	_, next, err := s.StoreReportAndNext(ctx, "A-DEVICE", &mdm.Report{Enrollment: mdm.Enrollment{UDID: "A-DEVICE"}, Status: mdm.Idle}, nil, now)
	if err != nil || next == nil || next.UUID != uuids[1] || string(next.Raw) != string(before[1].Raw) {
		t.Fatalf("next = %+v, %v; want %s", next, err, uuids[1])
	}
	// New commands continue the sequence.
	cmd, _ := mdm.NewCommand("DeviceInformation", nil)
	if err := s.Enqueue(ctx, []string{"A-DEVICE"}, cmd, now); err != nil {
		t.Fatal(err)
	}
	rec, err := s.Command(ctx, "A-DEVICE", cmd.UUID)
	if err != nil || rec.Seq <= after[len(after)-1].Seq {
		t.Fatalf("new command seq = %+v, %v; want > %d", rec, err, after[len(after)-1].Seq)
	}
}

// TestPendingIndexedBySchema3 opens commands laid out as schema 3 wrote
// them (pending ones indexed in cmdidx too): they are found, reported on,
// listed once and cancelled as before.
func TestPendingIndexedBySchema3(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Authenticate(ctx, "D", &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: "D"}, Topic: "t"}, "h", now); err != nil {
		t.Fatal(err)
	}
	var uuids []string
	for range 3 {
		c, _ := mdm.NewCommand("ProfileList", nil)
		if err := s.Enqueue(ctx, []string{"D"}, c, now); err != nil {
			t.Fatal(err)
		}
		uuids = append(uuids, c.UUID)
	}
	// Index the pending commands as schema 3 did.
	err = s.db.Update(func(tx *bbolt.Tx) error {
		p := prefix("D")
		c := tx.Bucket(bQueue).Cursor()
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			if err := tx.Bucket(bCmdIdx).Put(key("D", clone(queueUUID(v))), clone(k[len(p):])); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if list, err := s.Commands(ctx, "D"); err != nil || len(list) != 3 || list[0].UUID != uuids[0] || list[2].UUID != uuids[2] {
		t.Fatalf("Commands = %d, %v", len(list), err)
	}
	_, next, err := s.StoreReportAndNext(ctx, "D", &mdm.Report{Enrollment: mdm.Enrollment{UDID: "D"}, Status: mdm.Acknowledged, CommandUUID: uuids[0]}, []byte("<plist/>"), now)
	if err != nil || next == nil || next.UUID != uuids[1] {
		t.Fatalf("after the report next = %+v, %v", next, err)
	}
	if rec, err := s.Command(ctx, "D", uuids[0]); err != nil || rec.Status != string(mdm.Acknowledged) {
		t.Fatalf("reported command = %+v, %v", rec, err)
	}
	if err := s.Authenticate(ctx, "D", &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: "D"}, Topic: "t"}, "h", now); err != nil {
		t.Fatal(err)
	}
	for _, u := range uuids[1:] {
		if rec, err := s.Command(ctx, "D", u); err != nil || rec.Status != mdm.StatusCanceled {
			t.Errorf("command %s after re-enrollment = %+v, %v", u, rec, err)
		}
	}
	if list, _ := s.Commands(ctx, "D"); len(list) != 3 {
		t.Errorf("Commands lists %d commands, want 3", len(list))
	}
}
