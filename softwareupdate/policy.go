// Package softwareupdate is the pure core of Sundial's Managed OS engine:
// update policies and their validation, exceptions, target resolution
// (which version a Mac must reach), personal deadlines (by when, DST-correct
// in the policy's time zone), and phases (what to do now). Nothing here does
// I/O or reads the clock: every function takes the current time as an
// argument, so the scheduler, the storage layer and the enforcers can call
// these functions and tests can drive them through any timeline.
package softwareupdate

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // policies name IANA zones; do not depend on the host's tzdata

	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
)

// Mode is what a policy does.
type Mode string

// Policy modes.
const (
	// ModeUnmanaged: Sundial does not enforce updates.
	ModeUnmanaged Mode = "unmanaged"
	// ModeAutomatic: each new release becomes required DelayDays after
	// Apple posted it, at TimeOfDay in TimeZone.
	ModeAutomatic Mode = "automatic"
	// ModeManual: MinimumVersion is required by Date at TimeOfDay in TimeZone.
	ModeManual Mode = "manual"
)

// EnforcementPath selects how updates are pushed to the Mac.
type EnforcementPath string

// Enforcement paths.
const (
	// PathAuto lets Sundial choose (declarative on supervised macOS 14+,
	// legacy commands otherwise). The empty path means PathAuto.
	PathAuto EnforcementPath = "auto"
	// PathLegacy forces the ScheduleOSUpdate command family.
	PathLegacy EnforcementPath = "legacy"
	// PathDeclarative forces the softwareupdate.enforcement.specific declaration.
	PathDeclarative EnforcementPath = "declarative"
)

// DeviceLocal is the special manual-mode TimeZone meaning "in each Mac's
// own local time".
const DeviceLocal = "device-local"

// Policy limits and defaults.
const (
	MinDelayDays             = 1
	MaxDelayDays             = 92 // three months
	DefaultMinimumNoticeDays = 5
	MaxMinimumNoticeDays     = 30
	MaxRingOffsetDays        = 30
	MaxOfflineGraceHours     = 72 // Policy.OfflineGraceHours
	// MaxDeadlineAhead bounds how far in the future a manual deadline may be.
	MaxDeadlineAhead = 2 * 366 * 24 * time.Hour
)

// DelayPresets are the named automatic-mode delays, in the order a UI
// should offer them.
var DelayPresets = []struct {
	Name string
	Days int
}{
	{"1d", 1}, {"2d", 2}, {"1w", 7}, {"2w", 14}, {"3w", 21},
	{"1mo", 30}, {"2mo", 60}, {"3mo", 90},
}

// ParseDelay parses a delay preset ("1d", "2d", "1w", "2w", "3w", "1mo",
// "2mo", "3mo") or a number of days ("10" or "10d") between MinDelayDays
// and MaxDelayDays.
func ParseDelay(s string) (int, error) {
	for _, p := range DelayPresets {
		if s == p.Name {
			return p.Days, nil
		}
	}
	digits := strings.TrimSuffix(s, "d")
	n, err := strconv.Atoi(digits)
	if err != nil || digits == "" || digits[0] < '0' || digits[0] > '9' {
		return 0, fmt.Errorf("%w: delay %q: use a preset (1d, 2d, 1w, 2w, 3w, 1mo, 2mo, 3mo) or a number of days", ErrMalformed, s)
	}
	if n < MinDelayDays || n > MaxDelayDays {
		return 0, fmt.Errorf("%w: delay %q: must be %d to %d days", ErrOutOfRange, s, MinDelayDays, MaxDelayDays)
	}
	return n, nil
}

// Policy is a group's update policy. Fields hold what the admin typed
// (strings for versions, dates and times), so a stored policy shows exactly
// what was set; Validate checks them.
type Policy struct {
	Mode Mode `json:"mode"`

	// DelayDays (automatic): a release becomes required this many calendar
	// days (in TimeZone) after Apple posted it. See ParseDelay.
	DelayDays int `json:"delay_days,omitempty"`

	// MinimumVersion (manual): the version every Mac must reach, e.g. "15.7.9".
	MinimumVersion string `json:"minimum_version,omitempty"`
	// Date (manual): the deadline day, "YYYY-MM-DD".
	Date string `json:"date,omitempty"`

	// TimeOfDay: the deadline's wall-clock time, "HH:MM" (24-hour).
	TimeOfDay string `json:"time_of_day,omitempty"`
	// TimeZone: an IANA zone name ("Europe/Berlin"); in manual mode also
	// DeviceLocal.
	TimeZone string `json:"time_zone,omitempty"`
	// FallbackTimeZone (DeviceLocal only, required there): the IANA zone a
	// Mac's deadline is computed in until its agent reports the Mac's own.
	FallbackTimeZone string `json:"fallback_time_zone,omitempty"`

	// AllowMajorUpgrades lets the target be in a newer major version than
	// the Mac runs. Off (the default): the latest minor within its major.
	AllowMajorUpgrades bool `json:"allow_major_upgrades,omitempty"`
	// MinimumNoticeDays: a Mac that becomes non-compliant never gets less
	// notice than this before its deadline. 0 means the default (5).
	MinimumNoticeDays int `json:"minimum_notice_days,omitempty"`
	// RingOffsetDays shifts the deadline by whole calendar days (pilot +0,
	// broad +3, late +7).
	RingOffsetDays int `json:"ring_offset_days,omitempty"`
	// OfflineGraceHours: a Mac offline at its deadline gets this long after
	// its first check-in before the forced install (legacy path). 0 means
	// the server's --offline-grace.
	OfflineGraceHours int `json:"offline_grace_hours,omitempty"`
	// DetailsURL is shown to users (and put in the declaration).
	DetailsURL string `json:"details_url,omitempty"`
	// Path overrides the enforcement path; empty means PathAuto.
	Path EnforcementPath `json:"path,omitempty"`
	// AllowUnknownVersion accepts a MinimumVersion the catalog does not know.
	AllowUnknownVersion bool `json:"allow_unknown_version,omitempty"`
	// SetupMinimum: "required" holds an ADE Mac below the target at Setup
	// Assistant until it updates (macOS 14+), "off" lets it enroll first.
	// Empty means required for manual policies and off otherwise.
	SetupMinimum string `json:"setup_minimum,omitempty"`
	// Calendar, when set, moves deadlines that fall outside working time
	// to the next working time in the Mac's zone (calendar.go).
	Calendar *Calendar `json:"calendar,omitempty"`
}

// SetupMinimumRequired reports whether ADE Macs below the target wait at
// Setup Assistant.
func (p *Policy) SetupMinimumRequired() bool {
	switch p.SetupMinimum {
	case SetupMinimumRequired:
		return p.Mode != ModeUnmanaged
	case SetupMinimumOff:
		return false
	}
	return p.Mode == ModeManual
}

// Values of Policy.SetupMinimum.
const (
	SetupMinimumRequired = "required"
	SetupMinimumOff      = "off"
)

// NoticeDays returns the effective minimum notice in days.
func (p *Policy) NoticeDays() int {
	if p.MinimumNoticeDays <= 0 {
		return DefaultMinimumNoticeDays
	}
	return p.MinimumNoticeDays
}

// Validation error categories. Every *FieldError wraps one of them, so
// callers can test with errors.Is(err, ErrUnknownTimeZone).
var (
	ErrMissing         = errors.New("required")
	ErrMalformed       = errors.New("malformed")
	ErrOutOfRange      = errors.New("out of range")
	ErrUnknownTimeZone = errors.New("unknown time zone")
	ErrUnknownVersion  = errors.New("version not in the release catalog")
	ErrDeadlinePast    = errors.New("deadline is in the past")
	ErrNotApplicable   = errors.New("not applicable to this mode")
)

// FieldError is one problem with one field.
type FieldError struct {
	Field  string // JSON name, e.g. "time_zone"
	Value  string // the offending value as given (may be empty)
	Err    error  // one of the Err* categories
	Detail string // a human hint; may be empty
}

func (e *FieldError) Error() string {
	s := e.Field
	if e.Value != "" {
		s += " " + strconv.Quote(e.Value)
	}
	s += ": " + e.Err.Error()
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

// Unwrap returns the category.
func (e *FieldError) Unwrap() error { return e.Err }

// ValidationError lists every problem found in one object.
type ValidationError struct {
	What   string // "policy" or "exception"
	Fields []*FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Error()
	}
	return "invalid " + e.What + ": " + strings.Join(parts, "; ")
}

// Unwrap exposes the field errors to errors.Is and errors.As.
func (e *ValidationError) Unwrap() []error {
	errs := make([]error, len(e.Fields))
	for i, f := range e.Fields {
		errs[i] = f
	}
	return errs
}

type fieldErrors struct {
	what string
	list []*FieldError
}

func (f *fieldErrors) add(field, value string, err error, detail string, args ...any) {
	if len(args) > 0 {
		detail = fmt.Sprintf(detail, args...)
	}
	f.list = append(f.list, &FieldError{Field: field, Value: truncate(value), Err: err, Detail: detail})
}

func (f *fieldErrors) err() error {
	if len(f.list) == 0 {
		return nil
	}
	return &ValidationError{What: f.what, Fields: f.list}
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// Validate checks p against the catalog at instant now and returns nil or a
// *ValidationError listing every problem (each wraps an Err* category). A
// nil catalog is treated as empty. For a device-local manual deadline,
// "in the past" means past in the earliest time zone on Earth (UTC+14),
// so no Mac anywhere gets a deadline that has already gone by.
func (p *Policy) Validate(now time.Time, cat *catalog.Catalog) error {
	fe := &fieldErrors{what: "policy"}
	switch p.Mode {
	case ModeUnmanaged, ModeAutomatic, ModeManual:
	case "":
		fe.add("mode", "", ErrMissing, "one of unmanaged, automatic, manual")
	default:
		fe.add("mode", string(p.Mode), ErrMalformed, "one of unmanaged, automatic, manual")
	}

	// Options, checked in every mode so nonsense is never stored.
	if p.MinimumNoticeDays < 0 || p.MinimumNoticeDays > MaxMinimumNoticeDays {
		fe.add("minimum_notice_days", strconv.Itoa(p.MinimumNoticeDays), ErrOutOfRange, "0 (default %d) to %d days", DefaultMinimumNoticeDays, MaxMinimumNoticeDays)
	}
	if p.OfflineGraceHours < 0 || p.OfflineGraceHours > MaxOfflineGraceHours {
		fe.add("offline_grace_hours", strconv.Itoa(p.OfflineGraceHours), ErrOutOfRange, "0 (the server's default) to %d hours", MaxOfflineGraceHours)
	}
	if p.RingOffsetDays < 0 || p.RingOffsetDays > MaxRingOffsetDays {
		fe.add("ring_offset_days", strconv.Itoa(p.RingOffsetDays), ErrOutOfRange, "0 to %d days", MaxRingOffsetDays)
	}
	switch p.SetupMinimum {
	case "", SetupMinimumRequired, SetupMinimumOff:
	default:
		fe.add("setup_minimum", p.SetupMinimum, ErrMalformed, "required or off")
	}
	switch p.Path {
	case "", PathAuto, PathLegacy, PathDeclarative:
	default:
		fe.add("path", string(p.Path), ErrMalformed, "one of auto, legacy, declarative")
	}
	if p.DetailsURL != "" {
		if u, err := url.Parse(p.DetailsURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(p.DetailsURL) > 2048 {
			fe.add("details_url", p.DetailsURL, ErrMalformed, "an absolute http(s) URL")
		}
	}

	if p.Calendar != nil {
		if p.Mode == ModeUnmanaged {
			fe.add("calendar", "", ErrNotApplicable, "an unmanaged policy has no deadlines to move")
		}
		p.Calendar.compile(fe)
	}

	if p.FallbackTimeZone != "" && !(p.Mode == ModeManual && p.TimeZone == DeviceLocal) {
		fe.add("fallback_time_zone", p.FallbackTimeZone, ErrNotApplicable, "only a device-local manual policy has a fallback zone")
	}

	switch p.Mode {
	case ModeAutomatic:
		switch {
		case p.DelayDays == 0:
			fe.add("delay_days", "", ErrMissing, "%d to %d days", MinDelayDays, MaxDelayDays)
		case p.DelayDays < MinDelayDays || p.DelayDays > MaxDelayDays:
			fe.add("delay_days", strconv.Itoa(p.DelayDays), ErrOutOfRange, "%d to %d days", MinDelayDays, MaxDelayDays)
		}
		if p.MinimumVersion != "" {
			fe.add("minimum_version", p.MinimumVersion, ErrNotApplicable, "automatic mode follows Apple's releases; use manual mode for a minimum version")
		}
		if p.Date != "" {
			fe.add("date", p.Date, ErrNotApplicable, "automatic mode derives deadlines from posting dates")
		}
		p.validateTimeOfDay(fe)
		if p.TimeZone == DeviceLocal {
			fe.add("time_zone", p.TimeZone, ErrNotApplicable, "device-local time is available in manual mode only")
		} else {
			p.validateZone(fe)
		}
	case ModeManual:
		if p.DelayDays != 0 {
			fe.add("delay_days", strconv.Itoa(p.DelayDays), ErrNotApplicable, "manual mode uses a date")
		}
		p.validateVersion(fe, cat)
		tod, todOK := p.validateTimeOfDay(fe)
		var loc *time.Location
		if p.TimeZone == DeviceLocal {
			loc = earliestZone
			p.validateFallbackZone(fe)
		} else {
			loc = p.validateZone(fe)
		}
		var day time.Time
		switch {
		case p.Date == "":
			fe.add("date", "", ErrMissing, "YYYY-MM-DD")
		default:
			d, err := time.Parse(time.DateOnly, p.Date)
			if err != nil {
				fe.add("date", p.Date, ErrMalformed, "YYYY-MM-DD, a real calendar day")
			} else {
				day = d
			}
		}
		if !day.IsZero() && todOK && loc != nil {
			y, m, d := day.Date()
			deadline := wallTime(y, m, d, tod.hour, tod.min, loc)
			switch {
			case !deadline.After(now):
				fe.add("date", p.Date+" "+p.TimeOfDay, ErrDeadlinePast, "now is %s", now.In(loc).Format("2006-01-02 15:04 MST"))
			case deadline.Sub(now) > MaxDeadlineAhead:
				fe.add("date", p.Date, ErrOutOfRange, "at most two years ahead")
			}
		}
	}
	return fe.err()
}

func (p *Policy) validateTimeOfDay(fe *fieldErrors) (clock, bool) {
	if p.TimeOfDay == "" {
		fe.add("time_of_day", "", ErrMissing, `"HH:MM", e.g. "17:00"`)
		return clock{}, false
	}
	c, err := parseClock(p.TimeOfDay)
	if err != nil {
		fe.add("time_of_day", p.TimeOfDay, ErrMalformed, `"HH:MM" from 00:00 to 23:59`)
		return clock{}, false
	}
	return c, true
}

func (p *Policy) validateZone(fe *fieldErrors) *time.Location {
	if p.TimeZone == "" {
		fe.add("time_zone", "", ErrMissing, `an IANA name such as "America/New_York"`)
		return nil
	}
	loc, err := loadLocation(p.TimeZone)
	if err != nil {
		fe.add("time_zone", p.TimeZone, ErrUnknownTimeZone, `use an IANA name such as "Europe/Berlin"`)
		return nil
	}
	return loc
}

// validateFallbackZone checks the zone a device-local policy uses for a Mac
// whose agent has not reported its zone yet.
func (p *Policy) validateFallbackZone(fe *fieldErrors) {
	if p.FallbackTimeZone == "" {
		fe.add("fallback_time_zone", "", ErrMissing, `device-local needs the IANA zone to use until a Mac's agent reports its own, e.g. "Europe/Berlin"`)
		return
	}
	if _, err := loadLocation(p.FallbackTimeZone); err != nil {
		fe.add("fallback_time_zone", p.FallbackTimeZone, ErrUnknownTimeZone, `use an IANA name such as "Europe/Berlin"`)
	}
}

func (p *Policy) validateVersion(fe *fieldErrors, cat *catalog.Catalog) {
	if p.MinimumVersion == "" {
		fe.add("minimum_version", "", ErrMissing, `e.g. "15.7.9"`)
		return
	}
	v, err := catalog.ParseVersion(p.MinimumVersion)
	if err != nil {
		fe.add("minimum_version", p.MinimumVersion, ErrMalformed, `digits and dots, e.g. "15.7.9"`)
		return
	}
	if v.Major() < 10 || v.Major() > 99 {
		fe.add("minimum_version", p.MinimumVersion, ErrOutOfRange, "not a macOS version")
		return
	}
	if p.AllowUnknownVersion {
		return
	}
	if _, ok := cat.Lookup(v); !ok {
		hint := "set allow_unknown_version to enforce it anyway"
		if latest, ok := cat.LatestInMajor("", v.Major()); ok {
			hint = "latest known macOS " + strconv.Itoa(v.Major()) + " is " + latest.Version.String() + "; " + hint
		}
		fe.add("minimum_version", p.MinimumVersion, ErrUnknownVersion, hint)
	}
}

// clock is a wall-clock time of day.
type clock struct{ hour, min int }

// parseClock parses "HH:MM" strictly (two digits each, 00:00 to 23:59).
func parseClock(s string) (clock, error) {
	if len(s) != 5 || s[2] != ':' {
		return clock{}, fmt.Errorf("%w: time of day %q: want HH:MM", ErrMalformed, s)
	}
	h, m := twoDigits(s[0:2]), twoDigits(s[3:5])
	if h < 0 || h > 23 || m < 0 || m > 59 {
		return clock{}, fmt.Errorf("%w: time of day %q: want HH:MM from 00:00 to 23:59", ErrMalformed, s)
	}
	return clock{hour: h, min: m}, nil
}

func twoDigits(s string) int {
	if s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' {
		return -1
	}
	return int(s[0]-'0')*10 + int(s[1]-'0')
}

// earliestZone is the first zone on Earth to reach any given wall time.
var earliestZone = time.FixedZone("UTC+14", 14*60*60)

// locCache memoizes time.LoadLocation, which parses tzdata on every call.
// It only holds zones that loaded successfully, so it is bounded by the
// size of the tz database.
var locCache struct {
	sync.RWMutex
	m map[string]*time.Location
}

// loadLocation loads an IANA zone. "Local" is refused (it would depend on
// the server's configuration); "" is refused (LoadLocation maps it to UTC).
func loadLocation(name string) (*time.Location, error) {
	locCache.RLock()
	l, ok := locCache.m[name]
	locCache.RUnlock()
	if ok {
		return l, nil
	}
	if name == "" || name == "Local" || name == DeviceLocal || len(name) > 64 {
		return nil, fmt.Errorf("%w: %q", ErrUnknownTimeZone, truncate(name))
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownTimeZone, truncate(name))
	}
	locCache.Lock()
	if locCache.m == nil {
		locCache.m = map[string]*time.Location{}
	}
	locCache.m[name] = l
	locCache.Unlock()
	return l, nil
}
