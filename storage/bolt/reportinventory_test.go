package bolt

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/mdm"
)

// TestReportInventoryUndecodableDevice: when the inventory of a
// DeviceInformation answer cannot be merged (the device record does not
// decode), the report is still recorded, so the Mac's queue moves on, and
// the record is left as it was.
func TestReportInventoryUndecodableDevice(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	now := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	if err := s.Authenticate(ctx, "D", &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: "D"}, Topic: "t"}, "h", now); err != nil {
		t.Fatal(err)
	}
	di, err := mdm.NewCommand("DeviceInformation", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue(ctx, []string{"D"}, di, now); err != nil {
		t.Fatal(err)
	}
	bad := []byte("{not json")
	if err := s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bDevices).Put([]byte("D"), bad) }); err != nil {
		t.Fatal(err)
	}

	inv := &mdm.Inventory{OSVersion: "15.2", Reported: 1}
	r := &mdm.Report{Enrollment: mdm.Enrollment{UDID: "D"}, CommandUUID: di.UUID, Status: mdm.Acknowledged}
	_, stored, _, err := s.StoreReportInventoryAndNext(ctx, "D", r, []byte("<plist/>"), inv, now)
	if err != nil || stored {
		t.Fatalf("StoreReportInventoryAndNext with an undecodable device record = stored %v, %v; want the report alone", stored, err)
	}
	rec, err := s.Command(ctx, "D", di.UUID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != string(mdm.Acknowledged) || string(rec.Result) != "<plist/>" {
		t.Errorf("command after the report: status %s, result %q; want Acknowledged with the result", rec.Status, rec.Result)
	}
	if pending, err := s.HasPending(ctx, "D"); err != nil || pending {
		t.Errorf("HasPending = %v, %v; want the queue empty", pending, err)
	}
	err = s.db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bDevices).Get([]byte("D")); !bytes.Equal(v, bad) {
			t.Errorf("device record after the report = %q, want %q", v, bad)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
