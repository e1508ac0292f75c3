package mdm

import "testing"

func TestInventoryMerge(t *testing.T) {
	old := Inventory{OSVersion: "14.6", BuildVersion: "23G80", SerialNumber: "SER1", IsSupervised: true, IsAppleSilicon: true}
	body := []byte(`<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>CommandUUID</key><string>0001</string>
<key>QueryResponses</key><dict><key>OSVersion</key><string>14.7</string><key>SerialNumber</key><string>SER1</string></dict>
<key>Status</key><string>Acknowledged</string><key>UDID</key><string>AAA-1</string>
</dict></plist>`)
	inv, err := DecodeDeviceInformation(body)
	if err != nil {
		t.Fatal(err)
	}
	have := inv.Merge(old)
	want := Inventory{OSVersion: "14.7", BuildVersion: "23G80", SerialNumber: "SER1", IsSupervised: true, IsAppleSilicon: true}
	if have != want {
		t.Errorf("merged = %+v, want %+v", have, want)
	}
	// Built in code (Reported zero): replaces.
	full := Inventory{OSVersion: "15.1"}
	if have := full.Merge(old); have != full {
		t.Errorf("replace = %+v, want %+v", have, full)
	}
	// An answer without any key Sundial keeps changes nothing.
	empty, err := DecodeDeviceInformation(readTestdata(t, "DeviceInformation.Acknowledged.minimal.macos.plist"))
	if err != nil {
		t.Fatal(err)
	}
	if have := empty.Merge(old); have != old {
		t.Errorf("after an answer with no inventory key = %+v, want %+v", have, old)
	}
}
