package mdm

import (
	"fmt"
	"reflect"
	"testing"
)

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

// TestFastDeviceInformationAgrees: Mac answers take the fast path and
// decode as the library decodes them; forms the fast path does not know
// decline and still get the library's verdict.
func TestFastDeviceInformationAgrees(t *testing.T) {
	head := appleHead + "<key>CommandUUID</key><string>c</string><key>Status</key><string>Acknowledged</string><key>UDID</key><string>U</string>"
	accepted := map[string][]byte{
		"full":    fullDeviceInformation,
		"minimal": readTestdata(t, "DeviceInformation.Acknowledged.minimal.macos.plist"),
		"empty":   []byte(head + "<key>QueryResponses</key><dict></dict>" + appleTail),
		"absent":  []byte(head + appleTail),
		"false and repeated": []byte(head + "<key>QueryResponses</key><dict><key>IsSupervised</key><false/>" +
			"<key>OSVersion</key><string>14.0</string><key>OSVersion</key><string>14.1</string>" +
			"<key>DeviceCapacity</key><real> 1e3 </real><key>Reported</key><string>x</string></dict>" + appleTail),
	}
	for name, body := range accepted {
		fast, ok := fastDeviceInformation(body)
		if !ok {
			t.Errorf("%s: fast path declined", name)
			continue
		}
		lib, err := libraryDeviceInformation(body)
		if err != nil || *fast != *lib {
			t.Errorf("%s: fast = %+v, library = %+v, %v", name, *fast, lib, err)
		}
	}
	declined := map[string]string{
		"integer capacity":         "<key>QueryResponses</key><dict><key>DeviceCapacity</key><integer>1</integer></dict>",
		"string bool":              "<key>QueryResponses</key><dict><key>IsSupervised</key><string>yes</string></dict>",
		"real version":             "<key>QueryResponses</key><dict><key>OSVersion</key><real>14</real></dict>",
		"responses not a dict":     "<key>QueryResponses</key><string>x</string>",
		"repeated responses":       "<key>QueryResponses</key><dict></dict><key>QueryResponses</key><dict></dict>",
		"bad value of unknown key": "<key>QueryResponses</key><dict><key>X</key><integer>x</integer></dict>",
	}
	for name, v := range declined {
		if inv, ok := fastDeviceInformation([]byte(head + v + appleTail)); ok {
			t.Errorf("%s: fast path accepted: %+v", name, *inv)
		}
	}
}

// TestFastDeviceInformationKnowsEveryField: the fast path sets every data
// field of Inventory, so a field added later cannot be silently dropped.
func TestFastDeviceInformationKnowsEveryField(t *testing.T) {
	rt := reflect.TypeFor[Inventory]()
	for bit, i := range inventoryFields {
		name := rt.Field(i).Name
		var inv Inventory
		if inv.field([]byte(name)) == nil {
			t.Errorf("%s: no fast path field", name)
		}
		if inventoryBits[name] != bit {
			t.Errorf("%s: bit %d, want %d", name, inventoryBits[name], bit)
		}
	}
}

// FuzzFastDeviceInformationAgrees: whenever the fast path accepts a body,
// the library decodes it to the same Inventory.
func FuzzFastDeviceInformationAgrees(f *testing.F) {
	f.Add(fullDeviceInformation)
	f.Add(readTestdata(f, "DeviceInformation.Acknowledged.minimal.macos.plist"))
	f.Add([]byte(appleHead + "<key>QueryResponses</key><dict><key>IsSupervised</key><false/><key>DeviceCapacity</key><real>NaN</real></dict>" + appleTail))
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, ok := fastDeviceInformation(body)
		if !ok {
			return
		}
		lib, err := libraryDeviceInformation(body)
		if err != nil {
			t.Fatalf("fast path accepted what the library refuses (%v)", err)
		}
		// Compared as text: a NaN capacity is not equal to itself.
		if have, want := fmt.Sprintf("%+v", *fast), fmt.Sprintf("%+v", *lib); have != want {
			t.Fatalf("fast path = %s, library = %s", have, want)
		}
	})
}
