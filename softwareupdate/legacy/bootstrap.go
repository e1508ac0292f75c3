package legacy

import (
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

var _ scheduler.BootstrapReader = (*Enforcer)(nil)

// RequiresBootstrapToken implements scheduler.BootstrapReader: an
// acknowledged AvailableOSUpdates tells, per update, whether installing it
// needs a bootstrap token (Apple silicon, macOS 11+). known is false for
// other results, or when the list does not offer target.
func (e *Enforcer) RequiresBootstrapToken(res scheduler.Result, target string) (needs, known bool) {
	if res.RequestType != "AvailableOSUpdates" || res.Status != mdm.Acknowledged {
		return false, false
	}
	want, err := catalog.ParseVersion(target)
	if err != nil {
		return false, false
	}
	list, err := DecodeAvailableOSUpdates(res.Raw)
	if err != nil {
		return false, false
	}
	for _, u := range list {
		if u.SupplementalOSVersionExtra != "" {
			continue
		}
		if v, err := catalog.ParseVersion(u.Version); err == nil && v == want {
			needs = needs || u.RequiresBootstrapToken
			known = true
		}
	}
	return needs, known
}
