package scheduler

import (
	"context"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate"
)

// ZoneReader tells the IANA time zone a Mac's agent reported ("" while
// none has been).
type ZoneReader interface {
	DeviceZone(ctx context.Context, id string) string
}

// WithZones sets where device-local policies read each Mac's own zone.
// Without it (or before the agent reports one) a device-local deadline is
// computed in the policy's fallback zone.
func WithZones(z ZoneReader) Option { return func(s *Scheduler) { s.zones = z } }

// deviceLocation returns the Mac's own zone when p is a device-local policy
// and the agent reported a zone that loads; nil otherwise.
func (s *Scheduler) deviceLocation(ctx context.Context, p *softwareupdate.Policy, id string) *time.Location {
	if s.zones == nil || p.Mode != softwareupdate.ModeManual || p.TimeZone != softwareupdate.DeviceLocal {
		return nil
	}
	return softwareupdate.LoadZone(s.zones.DeviceZone(ctx, id))
}
