package mdm

import "reflect"

// InventoryQueries are the DeviceInformation queries Sundial asks for after
// enrollment and on every refresh.
var InventoryQueries = []string{
	"OSVersion", "BuildVersion", "SupplementalBuildVersion", "SupplementalOSVersionExtra",
	"ProductName", "Model", "ModelName", "DeviceName", "SerialNumber", "UDID",
	"IsSupervised", "IsAppleSilicon", "AvailableDeviceCapacity", "DeviceCapacity",
	"SoftwareUpdateDeviceID", "OSUpdateSettings",
}

// Inventory is what Sundial keeps from a DeviceInformation response. An empty
// OSVersion means the device never reported one: "unknown", never rejected.
type Inventory struct {
	OSVersion                  string  `plist:",omitempty" json:"os_version,omitempty"`
	BuildVersion               string  `plist:",omitempty" json:"build_version,omitempty"`
	SupplementalBuildVersion   string  `plist:",omitempty" json:"supplemental_build_version,omitempty"`
	SupplementalOSVersionExtra string  `plist:",omitempty" json:"supplemental_os_version_extra,omitempty"`
	ProductName                string  `plist:",omitempty" json:"product_name,omitempty"`
	Model                      string  `plist:",omitempty" json:"model,omitempty"`
	ModelName                  string  `plist:",omitempty" json:"model_name,omitempty"`
	DeviceName                 string  `plist:",omitempty" json:"device_name,omitempty"`
	SerialNumber               string  `plist:",omitempty" json:"serial_number,omitempty"`
	IsSupervised               bool    `plist:",omitempty" json:"is_supervised"`
	IsAppleSilicon             bool    `plist:",omitempty" json:"is_apple_silicon"`
	AvailableDeviceCapacity    float64 `plist:",omitempty" json:"available_device_capacity_gb,omitempty"`
	DeviceCapacity             float64 `plist:",omitempty" json:"device_capacity_gb,omitempty"`
	SoftwareUpdateDeviceID     string  `plist:",omitempty" json:"software_update_device_id,omitempty"`

	// Reported says which keys the answer it was decoded from contained
	// (DecodeDeviceInformation sets it; it is never stored). Zero means
	// every key: an Inventory built in code replaces the stored one.
	Reported InventoryKeys `plist:"-" json:"-"`
}

// InventoryKeys is a set of Inventory fields, one bit per field in
// declaration order.
type InventoryKeys uint32

// inventoryFields are the indexes of Inventory's data fields (all but
// Reported), in declaration order: bit i of InventoryKeys is field i.
var inventoryFields = func() []int {
	t := reflect.TypeFor[Inventory]()
	var out []int
	for i := range t.NumField() {
		if t.Field(i).Name != "Reported" {
			out = append(out, i)
		}
	}
	return out
}()

// Merge returns old updated with the fields inv reported: a key the Mac
// did not send keeps its last value, since an answer to an admin's
// DeviceInformation may carry only the keys that admin asked for. An inv
// with Reported zero replaces old entirely. The result's Reported is zero.
func (inv *Inventory) Merge(old Inventory) Inventory {
	if inv.Reported == 0 {
		out := *inv
		return out
	}
	out := old
	src, dst := reflect.ValueOf(inv).Elem(), reflect.ValueOf(&out).Elem()
	for bit, i := range inventoryFields {
		if inv.Reported&(1<<bit) != 0 {
			dst.Field(i).Set(src.Field(i))
		}
	}
	out.Reported = 0
	return out
}

// inventoryBits maps each data field's name (the plist key the library
// matches it by) to its bit in InventoryKeys.
var inventoryBits = func() map[string]int {
	t := reflect.TypeFor[Inventory]()
	m := make(map[string]int, len(inventoryFields))
	for bit, i := range inventoryFields {
		m[t.Field(i).Name] = bit
	}
	return m
}()

// inventoryWire is Inventory with a pointer per field, built once by
// reflection: decoding into it tells which keys the answer carried in the
// same pass (a plain struct cannot tell a missing IsSupervised from false).
var inventoryWire = func() reflect.Type {
	t := reflect.TypeFor[Inventory]()
	var fields []reflect.StructField
	for _, i := range inventoryFields {
		f := t.Field(i)
		fields = append(fields, reflect.StructField{Name: f.Name, Type: reflect.PointerTo(f.Type)})
	}
	return reflect.StructOf([]reflect.StructField{{Name: "QueryResponses", Type: reflect.StructOf(fields)}})
}()

// DecodeDeviceInformation extracts the inventory from an acknowledged
// DeviceInformation report body, with Reported set to the keys present.
func DecodeDeviceInformation(body []byte) (*Inventory, error) {
	if inv, ok := fastDeviceInformation(body); ok {
		return inv, nil
	}
	return libraryDeviceInformation(body)
}

// libraryDeviceInformation is DecodeDeviceInformation through the plist
// library, for what the fast path declines.
func libraryDeviceInformation(body []byte) (*Inventory, error) {
	w := reflect.New(inventoryWire)
	if err := decodeXMLPlist("DeviceInformation response", body, w.Interface()); err != nil {
		return nil, err
	}
	inv := new(Inventory)
	src, dst := w.Elem().Field(0), reflect.ValueOf(inv).Elem()
	for bit, i := range inventoryFields {
		if p := src.Field(bit); !p.IsNil() {
			dst.Field(i).Set(p.Elem())
			inv.Reported |= 1 << bit
		}
	}
	if inv.Reported == 0 {
		// Nothing Sundial keeps was reported: mark an empty set, not "every key".
		inv.Reported = noInventoryKeys
	}
	return inv, nil
}

// noInventoryKeys is a Reported value naming no field (a bit past the last).
const noInventoryKeys InventoryKeys = 1 << 31
