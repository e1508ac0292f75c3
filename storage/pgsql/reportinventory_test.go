package pgsql

import (
	"context"
	"testing"

	"github.com/sundial-mdm/sundial/mdm"
)

// TestReportInventoryUndecodableDevice: when the inventory of a
// DeviceInformation answer cannot be merged (the stored one does not
// decode), the report is still recorded, so the Mac's queue moves on, and
// the row's inventory is left as it was.
func TestReportInventoryUndecodableDevice(t *testing.T) {
	db := newTestDB(t)
	s := db.open(t)
	ctx := context.Background()
	enroll(t, s, "DEV-1")
	di, err := mdm.NewCommand("DeviceInformation", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue(ctx, []string{"DEV-1"}, di, t0); err != nil {
		t.Fatal(err)
	}
	db.exec(t, `UPDATE devices SET inventory = '"not an inventory"'::jsonb WHERE id = 'DEV-1'`)

	inv := &mdm.Inventory{OSVersion: "15.2", Reported: 1}
	_, kept, _, err := s.StoreReportInventoryAndNext(ctx, "DEV-1", report("DEV-1", di.UUID, mdm.Acknowledged), []byte("<plist/>"), inv, t0)
	if err != nil || kept {
		t.Fatalf("StoreReportInventoryAndNext with an undecodable stored inventory = stored %v, %v; want the report alone", kept, err)
	}
	rec, err := s.Command(ctx, "DEV-1", di.UUID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != string(mdm.Acknowledged) || string(rec.Result) != "<plist/>" {
		t.Errorf("command after the report: status %s, result %q; want Acknowledged with the result", rec.Status, rec.Result)
	}
	if pending, err := s.HasPending(ctx, "DEV-1"); err != nil || pending {
		t.Errorf("HasPending = %v, %v; want the queue empty", pending, err)
	}
	var stored, osv string
	if err := s.pool.QueryRow(ctx, `SELECT inventory::text, coalesce(os_version, '') FROM devices WHERE id = 'DEV-1'`).Scan(&stored, &osv); err != nil {
		t.Fatal(err)
	}
	if stored != `"not an inventory"` || osv == "15.2" {
		t.Errorf("device row after the report: inventory %s, os_version %q", stored, osv)
	}
}
