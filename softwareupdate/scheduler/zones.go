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

// EvaluationRetry is how long after an error while evaluating a device
// (a storage error in its enforcer, a declaration that cannot be built) it
// is evaluated again. The error is recorded on that device only: the pass
// goes on with the others.
const EvaluationRetry = time.Hour

// maxFailureLen bounds a failure reason kept on a device.
const maxFailureLen = 512

// evaluationFailure is the failure reason recorded for an evaluation error.
func evaluationFailure(err error) string {
	return clip("evaluation error: " + err.Error())
}

func clip(s string) string {
	if len(s) > maxFailureLen {
		return s[:maxFailureLen] + "..."
	}
	return s
}
