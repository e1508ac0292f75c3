package api

import (
	"context"
	"net/http"
	"net/url"
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

// DeviceList answers the query q exactly as GET /api/v1/devices does (the
// same parameters, limits and errors), for in-process callers such as the
// web console, so that both show the same devices.
func (s *Server) DeviceList(ctx context.Context, q url.Values) (*DeviceList, error) {
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, "/api/v1/devices?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	v, _, err := s.listDevices(r)
	if err != nil {
		return nil, err
	}
	l := v.(DeviceList)
	return &l, nil
}
