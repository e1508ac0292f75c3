package bolt

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
)

// readinessScanCases are stored device records and hand-written variants
// a scan must either read as json.Unmarshal does or refuse.
func readinessScanCases(t testing.TB) [][]byte {
	d := mdm.Device{ID: "A", UDID: "A", ParentID: "", SerialNumber: "C02AUTH", PushToken: []byte("tok\x00en"), PushMagic: "m\"agic",
		EnrolledAt: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC), BootstrapToken: make([]byte, 300),
		Inventory: mdm.Inventory{OSVersion: "15.1", SerialNumber: "C02INV", AvailableDeviceCapacity: 41.25, DeviceName: "Ann's <Mac> \\ é"}}
	real, err := json.Marshal(&d)
	if err != nil {
		t.Fatal(err)
	}
	d.ParentID, d.SerialNumber, d.Inventory.SerialNumber, d.Inventory.AvailableDeviceCapacity = "P", "é\"quoted\"", "\u2028x", 1e-7
	escaped, err := json.Marshal(&d)
	if err != nil {
		t.Fatal(err)
	}
	return [][]byte{real, escaped,
		[]byte(`{}`), []byte(` { "inventory" : null , "serial_number" : null } `), []byte(`null`),
		[]byte(`{"inventory":{"available_device_capacity_gb":12},"inventory":{"serial_number":"S"}}`),
		[]byte(`{"Serial_Number":"X"}`), []byte(`{"inventory":{"Available_Device_Capacity_GB":3}}`), []byte(`{"ſerial_number":"X"}`),
		[]byte(`{"x":[1,{"y":"}]\""}],"serial_number":"S","z":{"a":[[]]},"inventory":{"n":-1.5e3,"available_device_capacity_gb":-0.5}}`),
		[]byte(`{"serial_number":12}`), []byte(`{"inventory":{"available_device_capacity_gb":"12"}}`),
		[]byte(`{"inventory":{"available_device_capacity_gb":0x10}}`), []byte(`{"serial_number":"a` + "\xff" + `"}`),
		[]byte(`{"serial_number":"S"`), []byte(`{"serial_number":"S"} x`), []byte(`{"a\"b":1}`), []byte(`{"inventory":[1]}`),
		[]byte(`{"parent_id":"P","serial_number":"S"}`), []byte(`{"a":tru}`), []byte(""),
	}
}

// TestScanReadinessDevice: where the scan reads a record, it reads what
// json.Unmarshal reads; the plain records json.Marshal writes are read.
func TestScanReadinessDevice(t *testing.T) {
	cases := readinessScanCases(t)
	for i, v := range cases {
		checkScan(t, v)
		var d readinessDevice
		if ok := scanReadinessDevice(v, &d); i == 0 && !ok {
			t.Errorf("a record json.Marshal wrote is not scanned: %s", v)
		}
	}
}

func checkScan(t *testing.T, v []byte) {
	t.Helper()
	var got, want readinessDevice
	if !scanReadinessDevice(v, &got) {
		return
	}
	if err := json.Unmarshal(v, &want); err != nil {
		// The scan does not validate what it skips; it must still not
		// accept what json rejects in the fields it reads.
		var probe struct {
			ParentID     json.RawMessage `json:"parent_id"`
			SerialNumber json.RawMessage `json:"serial_number"`
			Inventory    json.RawMessage `json:"inventory"`
		}
		if json.Unmarshal(v, &probe) == nil {
			t.Errorf("scan read %q, json: %v", v, err)
		}
		return
	}
	if got != want {
		t.Errorf("scan of %q = %+v, json %+v", v, got, want)
	}
}

func FuzzScanReadinessDevice(f *testing.F) {
	for _, v := range readinessScanCases(f) {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v []byte) { checkScan(t, v) })
}
