package storagetest

import (
	"context"
	"testing"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/storage"
)

// deviceInformation returns an acknowledged DeviceInformation report body
// whose QueryResponses hold the given plist fragment.
func deviceInformation(responses string) []byte {
	return []byte(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict>
<key>CommandUUID</key><string>0001</string>
<key>QueryResponses</key><dict>` + responses + `</dict>
<key>Status</key><string>Acknowledged</string>
<key>UDID</key><string>AAA-1</string>
</dict></plist>`)
}

// testInventoryMerge: a DeviceInformation answer that reports only some
// keys (an admin's query for OSVersion and SerialNumber) keeps every other
// stored fact; a key the Mac reports replaces the stored value, even with false.
func testInventoryMerge(t *testing.T, s storage.All) {
	ctx := context.Background()
	enroll(t, s, "AAA-1", "h1")
	update := func(responses string) {
		t.Helper()
		inv, err := mdm.DecodeDeviceInformation(deviceInformation(responses))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.UpdateInventory(ctx, "AAA-1", inv, t0); err != nil {
			t.Fatal(err)
		}
	}
	update(`<key>OSVersion</key><string>14.6</string><key>BuildVersion</key><string>23G80</string>
<key>SerialNumber</key><string>SER1</string><key>IsSupervised</key><true/><key>IsAppleSilicon</key><true/>
<key>SoftwareUpdateDeviceID</key><string>J413AP</string><key>ProductName</key><string>Mac14,2</string>`)
	update(`<key>OSVersion</key><string>14.7</string><key>SerialNumber</key><string>SER1</string>`)
	d, err := s.Device(ctx, "AAA-1")
	if err != nil {
		t.Fatal(err)
	}
	want := mdm.Inventory{OSVersion: "14.7", BuildVersion: "23G80", SerialNumber: "SER1", IsSupervised: true,
		IsAppleSilicon: true, SoftwareUpdateDeviceID: "J413AP", ProductName: "Mac14,2"}
	if d.Inventory != want {
		t.Errorf("inventory after a partial answer = %+v, want %+v", d.Inventory, want)
	}
	if d.OSVersion != "14.7" || d.BuildVersion != "23G80" {
		t.Errorf("device OS = %s (%s), want 14.7 (23G80)", d.OSVersion, d.BuildVersion)
	}
	// A reported false replaces a stored true.
	update(`<key>IsSupervised</key><false/>`)
	if d, _ := s.Device(ctx, "AAA-1"); d.Inventory.IsSupervised || d.Inventory.OSVersion != "14.7" {
		t.Errorf("after IsSupervised false: %+v", d.Inventory)
	}
}
