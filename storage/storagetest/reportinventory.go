package storagetest

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/storage"
)

// testReportInventory: StoreReportInventoryAndNext stores an inventory
// with the report only when the report acknowledges a DeviceInformation
// command; any other report records as StoreReportAndNext does and leaves
// the device record as it was.
func testReportInventory(t *testing.T, s storage.All) {
	ctx := context.Background()
	enroll(t, s, "AAA-1", "h1")
	body := deviceInformation(`<key>OSVersion</key><string>15.2</string><key>BuildVersion</key><string>24C101</string>
<key>SerialNumber</key><string>SER9</string><key>IsSupervised</key><true/>`)
	inv, err := mdm.DecodeDeviceInformation(body)
	if err != nil {
		t.Fatal(err)
	}
	// A stored fact the answer does not report, to see the merge keep it.
	if err := s.UpdateInventory(ctx, "AAA-1", &mdm.Inventory{OSVersion: "14.6", BuildVersion: "23G80",
		SerialNumber: "SER1", ProductName: "Mac14,2"}, t0); err != nil {
		t.Fatal(err)
	}
	device := func() *mdm.Device {
		t.Helper()
		d, err := s.Device(ctx, "AAA-1")
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	unchanged := func(what string, was *mdm.Device) {
		t.Helper()
		if d := device(); !reflect.DeepEqual(d, was) {
			t.Errorf("%s changed the device record:\n have %+v\n want %+v", what, d, was)
		}
	}
	send := func(r *mdm.Report, inv *mdm.Inventory, at time.Time) (string, bool, *mdm.Command) {
		t.Helper()
		rt, stored, next, err := s.StoreReportInventoryAndNext(ctx, "AAA-1", r, body, inv, at)
		if err != nil {
			t.Fatalf("StoreReportInventoryAndNext(%s, %s): %v", r.CommandUUID, r.Status, err)
		}
		return rt, stored, next
	}
	enqueue := func(c *mdm.Command) {
		t.Helper()
		if err := s.Enqueue(ctx, []string{"AAA-1"}, c, t0); err != nil {
			t.Fatal(err)
		}
	}
	status := func(uuid, want string, result bool) {
		t.Helper()
		rec, err := s.Command(ctx, "AAA-1", uuid)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Status != want || (len(rec.Result) > 0) != result {
			t.Errorf("command %s: status %s, result %q; want %s, result %v", uuid, rec.Status, rec.Result, want, result)
		}
	}

	t.Run("OtherRequestType", func(t *testing.T) {
		list := cmd(t, "ProfileList")
		enqueue(list)
		was := device()
		rt, stored, _ := send(report("AAA-1", list.UUID, mdm.Acknowledged), inv, t0.Add(time.Minute))
		if rt != "ProfileList" || stored {
			t.Errorf("reported %q, inventory stored %v; want ProfileList, false", rt, stored)
		}
		unchanged("an inventory on a ProfileList report", was)
		status(list.UUID, string(mdm.Acknowledged), true)
	})

	t.Run("UnknownCommand", func(t *testing.T) {
		was := device()
		wasCmds, err := s.Commands(ctx, "AAA-1")
		if err != nil {
			t.Fatal(err)
		}
		rt, stored, _ := send(report("AAA-1", mdm.NewUUID(), mdm.Acknowledged), inv, t0.Add(time.Minute))
		if rt != "" || stored {
			t.Errorf("reported %q, inventory stored %v; want nothing", rt, stored)
		}
		unchanged("a report of an unknown command", was)
		if cmds, _ := s.Commands(ctx, "AAA-1"); !reflect.DeepEqual(cmds, wasCmds) {
			t.Errorf("a report of an unknown command changed the commands: %d, want %d", len(cmds), len(wasCmds))
		}
		// An unknown enrollment is no error either, as for StoreReportAndNext.
		if rt, stored, next, err := s.StoreReportInventoryAndNext(ctx, "ZZZ-9", report("ZZZ-9", mdm.NewUUID(), mdm.Acknowledged), body, inv, t0); err != nil || rt != "" || stored || next != nil {
			t.Errorf("unknown enrollment: %q, %v, %v, %v", rt, stored, next, err)
		}
	})

	t.Run("NotAcknowledged", func(t *testing.T) {
		for _, st := range []mdm.Status{mdm.NotNow, mdm.Error} {
			di := cmd(t, "DeviceInformation")
			enqueue(di)
			was := device()
			rt, stored, _ := send(report("AAA-1", di.UUID, st), inv, t0.Add(time.Minute))
			if rt != "DeviceInformation" || stored {
				t.Errorf("%s: reported %q, inventory stored %v; want DeviceInformation, false", st, rt, stored)
			}
			unchanged(string(st)+" of DeviceInformation", was)
			status(di.UUID, string(st), st != mdm.NotNow)
			if st == mdm.NotNow { // finish it so the queue is empty again
				send(report("AAA-1", di.UUID, mdm.Error), nil, t0.Add(time.Minute))
			}
		}
	})

	t.Run("NoInventory", func(t *testing.T) {
		di := cmd(t, "DeviceInformation")
		enqueue(di)
		was := device()
		rt, stored, _ := send(report("AAA-1", di.UUID, mdm.Acknowledged), nil, t0.Add(time.Minute))
		if rt != "DeviceInformation" || stored {
			t.Errorf("reported %q, inventory stored %v; want DeviceInformation, false", rt, stored)
		}
		unchanged("a DeviceInformation report without an inventory", was)
		status(di.UUID, string(mdm.Acknowledged), true)
	})

	t.Run("DeviceInformation", func(t *testing.T) {
		di, after := cmd(t, "DeviceInformation"), cmd(t, "ProfileList")
		enqueue(di)
		enqueue(after)
		at := t0.Add(time.Hour)
		rt, stored, next := send(report("AAA-1", di.UUID, mdm.Acknowledged), inv, at)
		if rt != "DeviceInformation" || !stored {
			t.Errorf("reported %q, inventory stored %v; want DeviceInformation, true", rt, stored)
		}
		if uuidOf(next) != after.UUID {
			t.Errorf("next = %s, want %s", uuidOf(next), after.UUID)
		}
		status(di.UUID, string(mdm.Acknowledged), true)
		d := device()
		want := mdm.Inventory{OSVersion: "15.2", BuildVersion: "24C101", SerialNumber: "SER9", IsSupervised: true, ProductName: "Mac14,2"}
		if d.Inventory != want || !d.InventoryAt.Equal(at) {
			t.Errorf("inventory = %+v at %v, want %+v at %v", d.Inventory, d.InventoryAt, want, at)
		}
		if d.OSVersion != "15.2" || d.BuildVersion != "24C101" || d.SerialNumber != "SER9" {
			t.Errorf("device OS %s (%s), serial %s; want 15.2 (24C101), SER9", d.OSVersion, d.BuildVersion, d.SerialNumber)
		}

		// A duplicate report of the finished command stores nothing.
		other, err := mdm.DecodeDeviceInformation(deviceInformation(`<key>OSVersion</key><string>16.0</string>`))
		if err != nil {
			t.Fatal(err)
		}
		if rt, stored, _ := send(report("AAA-1", di.UUID, mdm.Acknowledged), other, at.Add(time.Hour)); rt != "" || stored {
			t.Errorf("duplicate report: reported %q, inventory stored %v; want nothing", rt, stored)
		}
		unchanged("a duplicate DeviceInformation report", d)
	})
}
