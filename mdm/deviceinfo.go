package mdm

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
}

type deviceInformationResponse struct {
	QueryResponses Inventory
}

// DecodeDeviceInformation extracts the inventory from an acknowledged
// DeviceInformation report body.
func DecodeDeviceInformation(body []byte) (*Inventory, error) {
	var r deviceInformationResponse
	if err := decodeXMLPlist("DeviceInformation response", body, &r); err != nil {
		return nil, err
	}
	return &r.QueryResponses, nil
}
