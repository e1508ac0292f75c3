package softwareupdate

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Calendar is a policy's business calendar: deadlines (and the offline
// grace's end) fall only in working time, in the Mac's zone. Fields hold
// what the admin typed; CompileCalendar checks them. A policy without a
// calendar keeps every deadline where its policy puts it.
type Calendar struct {
	// WorkingDays: "mon-fri" (the default when empty), a list
	// ("mon,tue,thu") or ranges ("sun-thu", "mon-wed,fri").
	WorkingDays string `json:"working_days,omitempty"`
	// WorkingHours: "HH:MM-HH:MM" (end after start, "24:00" for midnight),
	// at least CountdownWindow long; "09:00-17:00" when empty.
	WorkingHours string `json:"working_hours,omitempty"`
	// Holidays are days without working time.
	Holidays []Holiday `json:"holidays,omitempty"`
}

// Holiday is a day off: Date is "YYYY-MM-DD", or "MM-DD" for the same day
// every year.
type Holiday struct {
	Date string `json:"date"`
	Name string `json:"name,omitempty"` // shown when a deadline moves
}

// Calendar limits.
const (
	DefaultWorkingDays  = "mon-fri"
	DefaultWorkingHours = "09:00-17:00"
	MaxHolidays         = 500 // per calendar, yearly ones included
	MaxHolidayName      = 100 // bytes
	MaxICSBytes         = 256 << 10
	calendarSearchDays  = 1100 // how far Next looks for working time (three years)
)

var weekdayNames = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// WorkCalendar is a compiled Calendar. It is immutable and safe for
// concurrent use; the scheduler compiles one per policy and reuses it for
// every Mac, so Next does not allocate unless it moves a deadline.
type WorkCalendar struct {
	days       [7]bool
	start, end int            // minutes after midnight; end exclusive, at most 24*60
	dates      map[int]string // yyyymmdd → name
	yearly     map[int]string // mmdd → name
	daysText   string
	hoursText  string
}

// CompileCalendar checks c and compiles it; a nil c gives nil (no
// calendar). Errors are *FieldError with the field under "calendar.".
func CompileCalendar(c *Calendar) (*WorkCalendar, error) {
	if c == nil {
		return nil, nil
	}
	fe := &fieldErrors{what: "calendar"}
	w := c.compile(fe)
	if err := fe.err(); err != nil {
		return nil, err
	}
	return w, nil
}

func (c *Calendar) compile(fe *fieldErrors) *WorkCalendar {
	w := &WorkCalendar{dates: map[int]string{}, yearly: map[int]string{}}
	w.daysText = orDefault(c.WorkingDays, DefaultWorkingDays)
	days, err := parseWorkingDays(w.daysText)
	if err != nil {
		fe.add("calendar.working_days", c.WorkingDays, ErrMalformed, `days as "mon-fri", "mon,tue,thu" or "sun-thu"`)
	}
	w.days = days
	w.hoursText = orDefault(c.WorkingHours, DefaultWorkingHours)
	start, end, err := parseWorkingHours(w.hoursText)
	switch {
	case err != nil:
		fe.add("calendar.working_hours", c.WorkingHours, ErrMalformed, `"HH:MM-HH:MM" with the end after the start, e.g. "09:00-17:00" (24:00 for midnight)`)
	case time.Duration(end-start)*time.Minute < CountdownWindow:
		fe.add("calendar.working_hours", c.WorkingHours, ErrOutOfRange, "at least %s long: the countdown must fit", CountdownWindow)
	}
	w.start, w.end = start, end
	if len(c.Holidays) > MaxHolidays {
		fe.add("calendar.holidays", strconv.Itoa(len(c.Holidays)), ErrOutOfRange, "at most %d holidays", MaxHolidays)
		return w
	}
	for i, h := range c.Holidays {
		field := "calendar.holidays[" + strconv.Itoa(i) + "]"
		if len(h.Name) > MaxHolidayName {
			fe.add(field+".name", h.Name, ErrOutOfRange, "at most %d bytes", MaxHolidayName)
		}
		key, yearly, ok := parseHolidayDate(h.Date)
		switch {
		case !ok:
			fe.add(field, h.Date, ErrMalformed, `"YYYY-MM-DD", or "MM-DD" for every year`)
		case yearly:
			w.yearly[key] = h.Name
		default:
			w.dates[key] = h.Name
		}
	}
	return w
}

// parseWorkingDays parses "mon-fri", "mon,wed" or "sun-thu" (ranges wrap
// past Saturday: "fri-mon" is Friday to Monday).
func parseWorkingDays(s string) ([7]bool, error) {
	var days [7]bool
	if len(s) > 64 {
		return days, fmt.Errorf("%w: too long", ErrMalformed)
	}
	day := func(name string) (int, bool) {
		name = strings.ToLower(strings.TrimSpace(name))
		for i, n := range weekdayNames {
			if name == n {
				return i, true
			}
		}
		return 0, false
	}
	found := false
	for _, part := range strings.Split(s, ",") {
		from, to, isRange := strings.Cut(part, "-")
		a, ok := day(from)
		if !ok {
			return days, fmt.Errorf("%w: day %q", ErrMalformed, from)
		}
		b := a
		if isRange {
			if b, ok = day(to); !ok {
				return days, fmt.Errorf("%w: day %q", ErrMalformed, to)
			}
		}
		for d := a; ; d = (d + 1) % 7 {
			days[d], found = true, true
			if d == b {
				break
			}
		}
	}
	if !found {
		return days, fmt.Errorf("%w: no working day", ErrMalformed)
	}
	return days, nil
}

// parseWorkingHours parses "HH:MM-HH:MM" into minutes after midnight; the
// end may be "24:00" and must be after the start (no overnight hours).
func parseWorkingHours(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("%w: want HH:MM-HH:MM", ErrMalformed)
	}
	from, err := parseClock(strings.TrimSpace(a))
	if err != nil {
		return 0, 0, err
	}
	b = strings.TrimSpace(b)
	end := 24 * 60
	if b != "24:00" {
		to, err := parseClock(b)
		if err != nil {
			return 0, 0, err
		}
		end = to.hour*60 + to.min
	}
	start := from.hour*60 + from.min
	if end <= start {
		return 0, 0, fmt.Errorf("%w: the end must be after the start", ErrMalformed)
	}
	return start, end, nil
}

// parseHolidayDate parses "YYYY-MM-DD" (key yyyymmdd) or "MM-DD" (key
// mmdd, yearly).
func parseHolidayDate(s string) (key int, yearly, ok bool) {
	switch len(s) {
	case 10:
		d, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return 0, false, false
		}
		return dateKey(d.Date()), false, true
	case 5:
		// Read against a leap year, so "02-29" is accepted.
		d, err := time.Parse(time.DateOnly, "2024-"+s)
		if err != nil {
			return 0, false, false
		}
		return int(d.Month())*100 + d.Day(), true, true
	}
	return 0, false, false
}

func dateKey(y int, m time.Month, d int) int { return y*10000 + int(m)*100 + d }

// holiday returns the name of the holiday on a day and whether there is one.
func (w *WorkCalendar) holiday(y int, m time.Month, d int) (string, bool) {
	if name, ok := w.dates[dateKey(y, m, d)]; ok {
		return name, true
	}
	name, ok := w.yearly[int(m)*100+d]
	return name, ok
}

// working reports whether a day (a wall-clock date) has working time.
func (w *WorkCalendar) working(y int, m time.Month, d int) bool {
	if !w.days[time.Date(y, m, d, 12, 0, 0, 0, time.UTC).Weekday()] {
		return false
	}
	_, hol := w.holiday(y, m, d)
	return !hol
}

// Next returns the first instant at or after t from which a window of span
// lies within one day's working hours in loc (DST-correct: the hours are
// wall-clock times of each day), and, when that is not t itself, why t was
// not working time. The scheduler uses span CountdownWindow for deadlines
// (the countdown starts and ends in working time) and 0 for the end of the
// offline grace. If no working time is found within three years (holidays
// covering every working day), t is returned unmoved.
func (w *WorkCalendar) Next(t time.Time, span time.Duration, loc *time.Location) (time.Time, string) {
	to, moved := w.next(t, span, loc)
	if !moved {
		return t, ""
	}
	return to, w.why(t, span, loc)
}

// next is Next without the explanation: it does not allocate.
func (w *WorkCalendar) next(t time.Time, span time.Duration, loc *time.Location) (time.Time, bool) {
	if w == nil || t.IsZero() || loc == nil {
		return t, false
	}
	y, m, d := t.In(loc).Date()
	for i := range calendarSearchDays {
		if !w.working(y, m, d+i) {
			continue
		}
		start := wallTime(y, m, d+i, w.start/60, w.start%60, loc)
		end := wallTime(y, m, d+i, w.end/60, w.end%60, loc) // 24:00 normalizes to the next midnight
		c := start
		if t.After(c) {
			c = t
		}
		if c.Before(end) && !c.Add(span).After(end) {
			return c, !c.Equal(t)
		}
	}
	return t, false
}

// why says why t is not working time for a window of span.
func (w *WorkCalendar) why(t time.Time, span time.Duration, loc *time.Location) string {
	lt := t.In(loc)
	at := lt.Format("Mon 2006-01-02 15:04")
	y, m, d := lt.Date()
	if name, ok := w.holiday(y, m, d); ok {
		if name == "" {
			return at + " is a holiday"
		}
		return at + " is a holiday (" + name + ")"
	}
	if !w.days[lt.Weekday()] {
		return at + " is not a working day (" + w.daysText + ")"
	}
	mins := lt.Hour()*60 + lt.Minute()
	switch {
	case mins < w.start:
		return at + " is before working hours (" + w.hoursText + ")"
	case mins >= w.end:
		return at + " is after working hours (" + w.hoursText + ")"
	case span > 0:
		return at + " leaves less than the " + span.String() + " countdown before working hours end (" + w.hoursText + ")"
	}
	return at + " is outside working hours (" + w.hoursText + ")"
}

// MoveText is how a move is shown to admins: "Sat 2026-12-26 12:00 is a
// holiday (Boxing Day) → Mon 2026-12-28 09:00 Europe/Berlin".
func MoveText(why string, to time.Time, loc *time.Location) string {
	return why + " → " + to.In(loc).Format("Mon 2006-01-02 15:04") + " " + loc.String()
}

// Move is WorkingDeadline without the explanation (Explain gives it), for
// callers that evaluate a deadline over and over: it does not allocate.
func (w *WorkCalendar) Move(deadline time.Time, loc *time.Location) (time.Time, bool) {
	return w.next(deadline, CountdownWindow, loc)
}

// Explain is the explanation WorkingDeadline gives for a deadline that Move
// moved to to.
func (w *WorkCalendar) Explain(deadline, to time.Time, loc *time.Location) string {
	return MoveText(w.why(deadline, CountdownWindow, loc), to, loc)
}

// Explains reports whether text (from Explain) explains moving deadline
// to to in loc, without allocating: its moment and zone match. The rest of
// the text depends only on the calendar.
func Explains(text string, deadline, to time.Time, loc *time.Location) bool {
	if text == "" || loc == nil {
		return false
	}
	var a, b [32]byte
	from := deadline.In(loc).AppendFormat(a[:0], "Mon 2006-01-02 15:04")
	dest := to.In(loc).AppendFormat(b[:0], "Mon 2006-01-02 15:04")
	zone := loc.String()
	n := len(text) - len(zone) - 1 - len(dest)
	return n > len(from) && text[:len(from)] == string(from) && text[n:n+len(dest)] == string(dest) && text[len(text)-len(zone):] == zone
}

// WorkingDeadline moves a personal deadline (PersonalDeadline) to working
// time: the first instant at or after it from which the whole countdown
// (CountdownWindow) lies in one day's working hours in loc, the Mac's
// zone. It returns the deadline and, if it moved, the explanation
// (MoveText); with no calendar the deadline is returned as it is.
func WorkingDeadline(w *WorkCalendar, deadline time.Time, loc *time.Location) (time.Time, string) {
	if w == nil || deadline.IsZero() || loc == nil {
		return deadline, ""
	}
	to, why := w.Next(deadline, CountdownWindow, loc)
	if why == "" {
		return deadline, ""
	}
	return to, MoveText(why, to, loc)
}
