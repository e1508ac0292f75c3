package scheduler

import (
	"context"
)

// ZoneReader tells the IANA time zone a Mac's agent reported ("" while
// none has been).
type ZoneReader interface {
	DeviceZone(ctx context.Context, id string) string
}

// WithZones sets where device-local policies and business calendars read
// each Mac's own zone. It is read when a device is touched and kept in its
// Facts (TimeZone), so a pass reads no zone.
// Without it (or before the agent reports one) a device-local deadline is
// computed in the policy's fallback zone.
func WithZones(z ZoneReader) Option { return func(s *Scheduler) { s.zones = z } }
