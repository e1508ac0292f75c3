package softwareupdate

import (
	"fmt"
	"strings"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
)

// DeviceFacts is what target resolution needs to know about a Mac, from
// its latest DeviceInformation (or DDM status).
type DeviceFacts struct {
	// OSVersion is the running macOS version; zero if never reported.
	OSVersion catalog.Version
	// Build is the running build, e.g. "25G76" (informational).
	Build string
	// BoardID is the SoftwareUpdateDeviceID (or DDM softwareupdate.device-id),
	// as Apple spells it (see catalog.Catalog.CanonicalBoardID).
	BoardID string
	// Model is the model identifier (DeviceInformation ProductName, e.g.
	// "Mac14,2"), used to find board IDs when BoardID is empty.
	Model string
}

// TargetStatus is the outcome of target resolution.
type TargetStatus string

// Target statuses.
const (
	// StatusNotManaged: the policy does not manage updates.
	StatusNotManaged TargetStatus = "not_managed"
	// StatusUnknownOS: the Mac never reported its OS version; reported, not enforced.
	StatusUnknownOS TargetStatus = "unknown_os"
	// StatusInvalidPolicy: the policy cannot be evaluated (it failed, or
	// skipped, Validate); nothing is enforced.
	StatusInvalidPolicy TargetStatus = "invalid_policy"
	// StatusUnsupported: the Mac's hardware cannot install the target;
	// reported, never attempted.
	StatusUnsupported TargetStatus = "unsupported"
	// StatusCompliant: the Mac runs the target or newer. Sundial never downgrades.
	StatusCompliant TargetStatus = "compliant"
	// StatusRequired: the Mac must update to Target.Version.
	StatusRequired TargetStatus = "required"
)

// Target is the version a Mac must reach under its policy.
type Target struct {
	Status TargetStatus
	// Reason explains the status in a sentence for reports.
	Reason string
	// Version is the compliance threshold: the Mac is compliant once it runs
	// Version or newer. Set for StatusRequired, StatusCompliant (when a
	// threshold applied) and StatusUnsupported.
	Version catalog.Version
	// Build is the target release's build, if the catalog knows it.
	Build string
	// Release is the catalog release the target came from; its Version is
	// zero when a manual policy names a version the catalog does not know.
	Release catalog.Release
	// PostingDate (automatic mode) is the posting date the deadline counts
	// from: that of the oldest release the Mac is missing, so the deadline
	// does not move when Apple posts again while the Mac is already late.
	PostingDate time.Time
	// MajorUpgrade is set when Version is in a newer major than the Mac runs.
	MajorUpgrade bool
	// HardwareUnverified is set when the Mac reported neither a board ID nor
	// a model the catalog knows, so hardware support was assumed.
	HardwareUnverified bool
}

// hardware is the set of board IDs a device may have.
type hardware struct {
	ref    catalog.BoardRef // the reported board ID, if hasRef
	hasRef bool
	boards []string // board IDs derived from the model, if no board ID
}

func hardwareOf(dev *DeviceFacts, cat *catalog.Catalog) hardware {
	if dev.BoardID != "" {
		return hardware{ref: cat.BoardRef(dev.BoardID), hasRef: true}
	}
	if dev.Model != "" {
		return hardware{boards: cat.BoardIDsForModel(dev.Model)}
	}
	return hardware{}
}

func (h *hardware) unverified() bool { return !h.hasRef && len(h.boards) == 0 }

// describe names the hardware for reasons (kept off fmt so that the
// hardware value does not escape to the heap on the hot path).
func (h *hardware) describe() string {
	if h.hasRef {
		return "board " + h.ref.ID()
	}
	return "model boards " + strings.Join(h.boards, ", ")
}

func (h *hardware) supports(r *catalog.Release) bool {
	if h.hasRef {
		return r.SupportsRef(h.ref)
	}
	if len(h.boards) == 0 {
		return true // unknown hardware: let the device decide
	}
	for _, b := range h.boards {
		if r.Supports(b) {
			return true
		}
	}
	return false
}

// supportsFrom is supports for a Mac running cur: a Mac already on r's
// major can install r if its board is listed by any release of that major
// or by the newest release (see catalog.Catalog.MajorSupports), so that one
// release's short device list does not strand it.
func (h *hardware) supportsFrom(cat *catalog.Catalog, r *catalog.Release, cur catalog.Version) bool {
	if h.supports(r) {
		return true
	}
	if r.Version.Major() != cur.Major() {
		return false
	}
	if h.hasRef {
		return cat.MajorSupports(cur.Major(), h.ref)
	}
	for _, b := range h.boards {
		if cat.MajorSupports(cur.Major(), cat.BoardRef(b)) {
			return true
		}
	}
	return false
}

const (
	reasonNotManaged = "the policy does not manage updates"
	reasonUnknownOS  = "the Mac has not reported its OS version"
	reasonCompliant  = "runs the target version or newer"
	reasonNoNewer    = "no newer release applies to this Mac"
	reasonRequired   = "must update to the target version"
	reasonAllExpired = "every newer release this Mac can install has expired in Apple's feed (is the release catalog current?)"
)

// ResolveTarget decides which version dev must reach under policy p, given
// the catalog, at instant now.
//
// Manual mode: the target is p.MinimumVersion. Without AllowMajorUpgrades a
// Mac on an older major is held to the latest release of its own major that
// its hardware supports instead.
//
// Automatic mode: every regular (non-supplemental) release newer than the
// Mac's version, within its major unless AllowMajorUpgrades, and supported by
// its hardware, becomes required DelayDays after its posting date at
// TimeOfDay in TimeZone. The target is the newest such release already
// required at now; if none is required yet, the next one to become required.
// Target.PostingDate is the oldest missing release's posting date, which
// anchors the deadline (see PersonalDeadline).
//
// A Mac at or above the target is compliant (never downgrade). A target its
// board ID does not support is StatusUnsupported; for a Mac already on the
// target's major, "supported" means listed by any release of that major or
// by the newest release, as feeds list devices unevenly. Supplemental releases
// (RSR/BSI) and releases past the feed's expiration date are never chosen
// as targets (a manual policy's own minimum version is the admin's choice).
func ResolveTarget(p Policy, dev DeviceFacts, cat *catalog.Catalog, now time.Time) Target {
	switch p.Mode {
	case ModeAutomatic, ModeManual:
	default:
		return Target{Status: StatusNotManaged, Reason: reasonNotManaged}
	}
	if dev.OSVersion.IsZero() {
		return Target{Status: StatusUnknownOS, Reason: reasonUnknownOS}
	}
	hw := hardwareOf(&dev, cat)
	var t Target
	if p.Mode == ModeManual {
		t = resolveManual(&p, dev.OSVersion, &hw, cat, now)
	} else {
		t = resolveAutomatic(&p, dev.OSVersion, &hw, cat, now)
	}
	t.HardwareUnverified = hw.unverified()
	return t
}

func invalidPolicy(err error) Target {
	return Target{Status: StatusInvalidPolicy, Reason: "policy cannot be evaluated: " + err.Error()}
}

func resolveManual(p *Policy, cur catalog.Version, hw *hardware, cat *catalog.Catalog, now time.Time) Target {
	min, err := catalog.ParseVersion(p.MinimumVersion)
	if err != nil {
		return invalidPolicy(err)
	}
	if !p.AllowMajorUpgrades && min.Major() > cur.Major() {
		// Stay within the current major: its latest release this Mac can run.
		rs := cat.Major(cur.Major())
		for i := len(rs) - 1; i >= 0; i-- {
			r := &rs[i]
			if cat.Expired(r, now) || !hw.supportsFrom(cat, r, cur) {
				continue
			}
			if cur.Compare(r.Version) >= 0 {
				return Target{Status: StatusCompliant, Reason: reasonCompliant, Version: r.Version, Build: r.Build, Release: *r}
			}
			return Target{
				Status: StatusRequired, Version: r.Version, Build: r.Build, Release: *r,
				Reason: fmt.Sprintf("minimum %s needs a major upgrade, which the policy does not allow: latest macOS %d instead", min, cur.Major()),
			}
		}
		if len(rs) > 0 && rs[len(rs)-1].Version.Compare(cur) > 0 && !cat.Expired(&rs[len(rs)-1], now) {
			r := rs[len(rs)-1]
			return Target{Status: StatusUnsupported, Version: r.Version, Build: r.Build, Release: r,
				Reason: fmt.Sprintf("%s is not supported by %s", hw.describe(), r.Name())}
		}
		return Target{Status: StatusCompliant, Reason: reasonNoNewer}
	}
	if cur.Compare(min) >= 0 {
		return Target{Status: StatusCompliant, Reason: reasonCompliant, Version: min}
	}
	rel, ok := cat.Lookup(min)
	if ok && !hw.supportsFrom(cat, &rel, cur) {
		return Target{Status: StatusUnsupported, Version: min, Build: rel.Build, Release: rel,
			Reason: fmt.Sprintf("%s is not supported by %s", hw.describe(), rel.Name())}
	}
	return Target{
		Status: StatusRequired, Reason: reasonRequired,
		Version: min, Build: rel.Build, Release: rel,
		MajorUpgrade: min.Major() > cur.Major(),
	}
}

func resolveAutomatic(p *Policy, cur catalog.Version, hw *hardware, cat *catalog.Catalog, now time.Time) Target {
	loc, err := loadLocation(p.TimeZone)
	if err != nil {
		return invalidPolicy(err)
	}
	tod, err := parseClock(p.TimeOfDay)
	if err != nil {
		return invalidPolicy(err)
	}
	if p.DelayDays < MinDelayDays || p.DelayDays > MaxDelayDays {
		return invalidPolicy(fmt.Errorf("%w: delay %d days", ErrOutOfRange, p.DelayDays))
	}
	// A release posted on day P is required from P+DelayDays at TimeOfDay.
	// The last day whose TimeOfDay has passed at now, minus the delay, is the
	// newest posting date already required.
	y, m, d := now.In(loc).Date()
	if wallTime(y, m, d, tod.hour, tod.min, loc).After(now) {
		d--
	}
	cutoff := time.Date(y, m, d-p.DelayDays, 0, 0, 0, 0, time.UTC)

	// oldest anchors the deadline (expired releases included: a Mac that
	// missed them is late since then); targets are never expired.
	var newestDue, next, oldest, unsupported *catalog.Release
	expiry := cat.ExpiryClock(now)
	cands := cat.Newer(cur)
	for i := range cands {
		r := &cands[i]
		if !p.AllowMajorUpgrades && r.Version.Major() != cur.Major() {
			break // ascending order: the current major's releases come first
		}
		if !hw.supportsFrom(cat, r, cur) {
			unsupported = r
			continue
		}
		if oldest == nil || !r.PostingDate.After(oldest.PostingDate) {
			oldest = r // earliest posting; the newest version among equals
		}
		if r.Expired(expiry) {
			continue // Apple's feed withdrew it: never a target
		}
		if !r.PostingDate.After(cutoff) {
			newestDue = r
		} else if next == nil || !r.PostingDate.After(next.PostingDate) {
			next = r
		}
	}
	if oldest == nil {
		if unsupported != nil {
			return Target{Status: StatusUnsupported, Version: unsupported.Version, Build: unsupported.Build, Release: *unsupported,
				Reason: fmt.Sprintf("%s is not supported by %s or any other newer release", hw.describe(), unsupported.Name())}
		}
		return Target{Status: StatusCompliant, Reason: reasonNoNewer}
	}
	tr := newestDue
	if tr == nil {
		tr = next // nothing required yet: the next release to become required
	}
	if tr == nil {
		return Target{Status: StatusCompliant, Reason: reasonAllExpired}
	}
	return Target{
		Status: StatusRequired, Reason: reasonRequired,
		Version: tr.Version, Build: tr.Build, Release: *tr,
		PostingDate:  oldest.PostingDate,
		MajorUpgrade: tr.Version.Major() > cur.Major(),
	}
}
