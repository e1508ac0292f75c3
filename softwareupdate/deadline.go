package softwareupdate

import (
	"time"
)

// latestZone is the last zone on Earth to reach any given wall time.
var latestZone = time.FixedZone("UTC-12", -12*60*60)

// wallTime returns the instant at which clocks in loc show the given day
// and time (day overflow normalizes like time.Date: day 32 of a month is the
// 1st of the next). Unlike time.Date, whose choice is unspecified and in
// practice differs between zones, daylight-saving transitions resolve
// deterministically:
//
//   - a time skipped by a spring-forward gap moves forward by the length of
//     the gap (02:30 on the day New York or Berlin springs forward gives
//     03:30 daylight time), so a deadline is never earlier than asked;
//   - a time that occurs twice when clocks fall back is its first
//     occurrence (01:30 daylight time in New York, 02:30 CEST in Berlin).
func wallTime(y int, m time.Month, d, hour, min int, loc *time.Location) time.Time {
	t := time.Date(y, m, d, hour, min, 0, 0, loc)
	// Offsets well before and after; zone transitions are months apart.
	_, offBefore := t.Add(-48 * time.Hour).Zone()
	_, offAfter := t.Add(48 * time.Hour).Zone()
	if offBefore == offAfter {
		return t
	}
	// Near a transition: try the wall time under both offsets.
	u := time.Date(y, m, d, hour, min, 0, 0, time.UTC) // the wall time, read as UTC
	c1 := u.Add(-time.Duration(offBefore) * time.Second)
	c2 := u.Add(-time.Duration(offAfter) * time.Second)
	ok1, ok2 := sameWall(c1, u, loc), sameWall(c2, u, loc)
	switch {
	case ok1 && ok2: // repeated wall time: the first occurrence
		if c2.Before(c1) {
			return c2
		}
		return c1
	case ok1:
		return c1
	case ok2:
		return c2
	}
	// Skipped wall time: under the pre-transition offset it lands after the
	// transition, shifted forward by the gap.
	return c1
}

// sameWall reports whether instant t shows, in loc, the wall time that u
// shows in UTC.
func sameWall(t, u time.Time, loc *time.Location) bool {
	lt := t.In(loc)
	y1, m1, d1 := lt.Date()
	y2, m2, d2 := u.Date()
	return y1 == y2 && m1 == m2 && d1 == d2 && lt.Hour() == u.Hour() && lt.Minute() == u.Minute()
}

// nextWall returns the first instant at or after t at which clocks in loc
// show time of day c.
func nextWall(t time.Time, c clock, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	w := wallTime(y, m, d, c.hour, c.min, loc)
	if w.Before(t) {
		w = wallTime(y, m, d+1, c.hour, c.min, loc)
	}
	return w
}

// policyLocation returns the zone a policy's deadlines are computed in.
// For DeviceLocal it is deviceLoc (the zone the Mac's agent reported), else
// the policy's FallbackTimeZone, else (a policy stored before fallback
// zones existed) the last zone on Earth (UTC-12), so that no Mac is
// enforced before its own local deadline.
func policyLocation(p *Policy, deviceLoc *time.Location) (*time.Location, bool) {
	if p.Mode == ModeManual && p.TimeZone == DeviceLocal {
		if deviceLoc != nil {
			return deviceLoc, true
		}
		if loc, err := loadLocation(p.FallbackTimeZone); err == nil {
			return loc, true
		}
		return latestZone, true
	}
	loc, err := loadLocation(p.TimeZone)
	return loc, err == nil
}

// DeadlineLocation returns the zone p's deadlines are computed in for a Mac
// whose agent reported deviceLoc (nil: not yet), or nil if the policy has
// no usable zone. Writing a deadline's wall-clock time in this zone gives
// back the policy's time of day: 12:00 on day X stays 12:00 on day X.
func DeadlineLocation(p Policy, deviceLoc *time.Location) *time.Location {
	loc, ok := policyLocation(&p, deviceLoc)
	if !ok {
		return nil
	}
	return loc
}

// LoadZone loads an IANA zone name as policies do (nil for "", "Local",
// DeviceLocal or an unknown name).
func LoadZone(name string) *time.Location {
	loc, err := loadLocation(name)
	if err != nil {
		return nil
	}
	return loc
}

// PolicyInstant returns the deadline the policy itself sets for target t,
// before minimum notice, ring offset and exceptions: in automatic mode
// t.PostingDate plus DelayDays calendar days at TimeOfDay in TimeZone; in
// manual mode Date at TimeOfDay in TimeZone (or deviceLoc for DeviceLocal).
// It is zero if the policy cannot be evaluated.
func PolicyInstant(p Policy, t Target, deviceLoc *time.Location) time.Time {
	loc, ok := policyLocation(&p, deviceLoc)
	if !ok {
		return time.Time{}
	}
	tod, err := parseClock(p.TimeOfDay)
	if err != nil {
		return time.Time{}
	}
	return policyInstant(&p, &t, tod, loc)
}

func policyInstant(p *Policy, t *Target, tod clock, loc *time.Location) time.Time {
	switch p.Mode {
	case ModeAutomatic:
		if t.PostingDate.IsZero() {
			return time.Time{}
		}
		y, m, d := t.PostingDate.UTC().Date()
		return wallTime(y, m, d+p.DelayDays, tod.hour, tod.min, loc)
	case ModeManual:
		day, err := time.Parse(time.DateOnly, p.Date)
		if err != nil {
			return time.Time{}
		}
		y, m, d := day.Date()
		return wallTime(y, m, d, tod.hour, tod.min, loc)
	}
	return time.Time{}
}

// PersonalDeadline returns the absolute instant by which the Mac must run
// tgt.Version, or the zero time if tgt is not StatusRequired or the policy
// cannot be evaluated (Decide reports that as a failure).
//
// The deadline is, in order:
//  1. the policy's instant (PolicyInstant), DST-correct in its zone;
//  2. never earlier than firstSeenNonCompliant + MinimumNoticeDays (exact
//     24-hour days, so the notice is never shortened by a DST change),
//     rounded up to the next TimeOfDay in the zone so that deadlines fall at
//     the policy's time; a zero firstSeenNonCompliant skips this step;
//  3. plus RingOffsetDays calendar days in the zone (same wall time);
//  4. with an exception: an exemption moves it to at least Expires +
//     minimum notice (rounded up to TimeOfDay), so the Mac rejoins its
//     policy with fresh notice when the exemption ends; a DeadlineOverride
//     moves it to at least the override. Exceptions only ever give more
//     time. Pass the exception whether or not it is still active: the
//     result is the same instant before and after it expires.
//
// The caller should reset firstSeenNonCompliant whenever the Mac becomes
// non-compliant afresh or its policy changes.
func PersonalDeadline(p Policy, tgt Target, firstSeenNonCompliant time.Time, ex *Exception, deviceLoc *time.Location) time.Time {
	if tgt.Status != StatusRequired {
		return time.Time{}
	}
	loc, ok := policyLocation(&p, deviceLoc)
	if !ok {
		return time.Time{}
	}
	tod, err := parseClock(p.TimeOfDay)
	if err != nil {
		return time.Time{}
	}
	d := policyInstant(&p, &tgt, tod, loc)
	if d.IsZero() {
		return d
	}
	notice := time.Duration(p.NoticeDays()) * 24 * time.Hour
	if !firstSeenNonCompliant.IsZero() {
		if n := nextWall(firstSeenNonCompliant.Add(notice), tod, loc); n.After(d) {
			d = n
		}
	}
	if p.RingOffsetDays > 0 {
		y, m, day := d.In(loc).Date()
		d = wallTime(y, m, day+p.RingOffsetDays, tod.hour, tod.min, loc)
	}
	if ex != nil {
		if ex.Exempt && !ex.Expires.IsZero() {
			if n := nextWall(ex.Expires.Add(notice), tod, loc); n.After(d) {
				d = n
			}
		}
		if ex.DeadlineOverride.After(d) {
			d = ex.DeadlineOverride
		}
	}
	return d
}
