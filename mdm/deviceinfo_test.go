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

// fullDeviceInformation is an answer to InventoryQueries as a Mac sends it.
var fullDeviceInformation = []byte(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict>
<key>CommandUUID</key><string>76eda240-5488-4989-8339-f2ae160113c4</string>
<key>QueryResponses</key><dict>
<key>AvailableDeviceCapacity</key><real>112.5</real>
<key>BuildVersion</key><string>24B83</string>
<key>DeviceCapacity</key><real>494.38</real>
<key>DeviceName</key><string>Lab Mac 12</string>
<key>IsAppleSilicon</key><true/>
<key>IsSupervised</key><true/>
<key>Model</key><string>Mac14,2</string>
<key>ModelName</key><string>MacBook Air</string>
<key>OSUpdateSettings</key><dict>
<key>AutomaticAppInstallationEnabled</key><false/>
<key>AutomaticCheckEnabled</key><true/>
<key>AutomaticOSInstallationEnabled</key><false/>
<key>AutomaticSecurityUpdatesEnabled</key><true/>
<key>BackgroundDownloadEnabled</key><true/>
<key>CatalogURL</key><string>https://swscan.apple.com/content/catalogs/others/index-15-14-13-12-10.16-10.15-10.14-10.13-10.12-10.11-10.10-10.9-mountainlion-lion-snowleopard-leopard.merged-1.sucatalog</string>
<key>IsDefaultCatalog</key><true/>
<key>PerformPeriodicCheck</key><true/>
<key>PreviousScanDate</key><date>2026-11-30T08:12:44Z</date>
<key>PreviousScanResult</key><string>0</string>
</dict>
<key>OSVersion</key><string>15.1</string>
<key>ProductName</key><string>Mac14,2</string>
<key>SerialNumber</key><string>C02XK1ZZJHD3</string>
<key>SoftwareUpdateDeviceID</key><string>J413AP</string>
<key>SupplementalBuildVersion</key><string>24B83</string>
<key>UDID</key><string>66ADE930-5FDF-5EC4-8429-15640684C489</string>
</dict>
<key>RequestType</key><string>DeviceInformation</string>
<key>Status</key><string>Acknowledged</string>
<key>UDID</key><string>66ADE930-5FDF-5EC4-8429-15640684C489</string>
</dict></plist>`)

func BenchmarkDecodeDeviceInformation(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeDeviceInformation(fullDeviceInformation); err != nil {
			b.Fatal(err)
		}
	}
}
