package api

import (
	"strings"

	"github.com/sundial-mdm/sundial/mdm"
)

// matchSearch reports whether a device's serial number, name, UDID or ID
// contains s (already lower case). Inventory values win over those sent at
// Authenticate, as in reports.
func matchSearch(d *mdm.Device, s string) bool {
	for _, v := range [...]string{d.SerialNumber, d.Inventory.SerialNumber, d.DeviceName, d.Inventory.DeviceName, d.UDID, d.ID} {
		if v != "" && strings.Contains(strings.ToLower(v), s) {
			return true
		}
	}
	return false
}
