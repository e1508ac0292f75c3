package softwareupdate

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrICS is wrapped by every error of ParseICS.
var ErrICS = errors.New("holiday calendar (ICS)")

// maxEventDays bounds one all-day event (a holiday run, a closure).
const maxEventDays = 31

// ParseICS reads the holidays of an iCalendar file (RFC 5545): every
// all-day VEVENT (DTSTART;VALUE=DATE) gives the days from DTSTART up to
// DTEND (exclusive; one day without DTEND, or a DURATION of whole days),
// named by its SUMMARY. A yearly RRULE on the event's own date
// (FREQ=YEARLY, optionally with COUNT or UNTIL) gives a holiday every year
// ("MM-DD"), or the years it lists. Cancelled events are skipped. Timed
// events, other recurrence rules (BYDAY, as for "fourth Thursday of
// November"), EXDATE and RDATE are refused with an error naming the event,
// as are files over MaxICSBytes or with more than MaxHolidays days.
func ParseICS(data []byte) ([]Holiday, error) {
	if len(data) > MaxICSBytes {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrICS, len(data), MaxICSBytes)
	}
	lines := unfoldICS(data)
	if len(lines) == 0 || !strings.EqualFold(strings.TrimSpace(lines[0]), "BEGIN:VCALENDAR") {
		return nil, fmt.Errorf("%w: not an iCalendar file (no BEGIN:VCALENDAR)", ErrICS)
	}
	var (
		out     []Holiday
		seen    = map[string]bool{}
		ev      *icsEvent
		depth   int // nesting inside the current VEVENT (VALARM ...)
		ended   bool
		lineNum int
	)
	add := func(h Holiday) error {
		if seen[h.Date] {
			return nil
		}
		if len(out) >= MaxHolidays {
			return fmt.Errorf("%w: more than %d holidays", ErrICS, MaxHolidays)
		}
		seen[h.Date] = true
		out = append(out, h)
		return nil
	}
	for i, line := range lines {
		lineNum = i + 1
		if line == "" {
			continue
		}
		name, params, value, ok := icsProperty(line)
		if !ok {
			return nil, fmt.Errorf("%w: line %d: not a property line", ErrICS, lineNum)
		}
		switch {
		case name == "BEGIN" && strings.EqualFold(value, "VEVENT") && ev == nil:
			ev = &icsEvent{line: lineNum}
			continue
		case name == "BEGIN" && ev != nil:
			depth++
			continue
		case name == "END" && ev != nil && depth > 0:
			depth--
			continue
		case name == "END" && strings.EqualFold(value, "VEVENT") && ev != nil:
			hs, err := ev.holidays()
			if err != nil {
				return nil, err
			}
			for _, h := range hs {
				if err := add(h); err != nil {
					return nil, err
				}
			}
			ev = nil
			continue
		case name == "END" && strings.EqualFold(value, "VCALENDAR") && ev == nil:
			ended = true
		}
		if ev == nil || depth > 0 {
			continue
		}
		if err := ev.set(name, params, value); err != nil {
			return nil, err
		}
	}
	if ev != nil {
		return nil, fmt.Errorf("%w: event at line %d has no END:VEVENT", ErrICS, ev.line)
	}
	if !ended {
		return nil, fmt.Errorf("%w: no END:VCALENDAR (a truncated file?)", ErrICS)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no all-day events", ErrICS)
	}
	return out, nil
}

// unfoldICS splits the file into logical lines: a line that starts with a
// space or a tab continues the previous one (RFC 5545 3.1).
func unfoldICS(data []byte) []string {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	var lines []string
	for _, raw := range strings.Split(string(data), "\n") {
		raw = strings.TrimSuffix(raw, "\r")
		if len(raw) > 0 && (raw[0] == ' ' || raw[0] == '\t') && len(lines) > 0 {
			lines[len(lines)-1] += raw[1:]
			continue
		}
		lines = append(lines, raw)
	}
	return lines
}

// icsProperty splits "NAME;PARAM=V;...:value" (the name upper-cased).
func icsProperty(line string) (name string, params map[string]string, value string, ok bool) {
	head, value, ok := strings.Cut(line, ":")
	if !ok {
		return "", nil, "", false
	}
	parts := strings.Split(head, ";")
	name = strings.ToUpper(strings.TrimSpace(parts[0]))
	if name == "" {
		return "", nil, "", false
	}
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(p, "=")
		if params == nil {
			params = map[string]string{}
		}
		params[strings.ToUpper(k)] = strings.Trim(v, `"`)
	}
	return name, params, value, true
}

type icsEvent struct {
	line        int
	summary     string
	start, end  time.Time
	days        int // from DURATION
	rrule       string
	cancelled   bool
	dateOnly    bool
	hasStart    bool
	unsupported string
}

func (e *icsEvent) errorf(format string, args ...any) error {
	what := fmt.Sprintf("event at line %d", e.line)
	if e.summary != "" {
		what += " (" + strconv.Quote(e.summary) + ")"
	}
	return fmt.Errorf("%w: %s: %s", ErrICS, what, fmt.Sprintf(format, args...))
}

func (e *icsEvent) set(name string, params map[string]string, value string) error {
	switch name {
	case "SUMMARY":
		e.summary = icsText(value)
		if len(e.summary) > MaxHolidayName {
			e.summary = strings.ToValidUTF8(e.summary[:MaxHolidayName], "")
		}
	case "STATUS":
		e.cancelled = strings.EqualFold(value, "CANCELLED")
	case "DTSTART", "DTEND":
		d, dateOnly, err := icsDate(params, value)
		if err != nil {
			return e.errorf("%s %q: %v", name, value, err)
		}
		if name == "DTSTART" {
			e.start, e.dateOnly, e.hasStart = d, dateOnly, true
		} else {
			e.end = d
		}
	case "DURATION":
		n, ok := icsDays(value)
		if !ok {
			return e.errorf("DURATION %q: only whole days (P1D) or weeks (P1W)", value)
		}
		e.days = n
	case "RRULE":
		e.rrule = value
	case "EXDATE", "RDATE":
		e.unsupported = name
	}
	return nil
}

// icsDate parses a DATE value (20261225); a DATE-TIME value is reported
// as not all-day.
func icsDate(params map[string]string, value string) (time.Time, bool, error) {
	if len(value) == 8 {
		d, err := time.Parse("20060102", value)
		if err != nil {
			return time.Time{}, false, fmt.Errorf("not a date (YYYYMMDD)")
		}
		return d, true, nil
	}
	if strings.EqualFold(params["VALUE"], "DATE") {
		return time.Time{}, false, fmt.Errorf("not a date (YYYYMMDD)")
	}
	return time.Time{}, false, nil
}

// icsDays parses a DURATION of whole days or weeks ("P1D", "P2W").
func icsDays(v string) (int, bool) {
	v = strings.TrimPrefix(strings.ToUpper(v), "+")
	if len(v) < 3 || v[0] != 'P' {
		return 0, false
	}
	n, err := strconv.Atoi(v[1 : len(v)-1])
	if err != nil || n < 1 {
		return 0, false
	}
	switch v[len(v)-1] {
	case 'D':
		return n, true
	case 'W':
		return 7 * n, true
	}
	return 0, false
}

// icsText undoes TEXT escaping (\\ \; \, \n).
func icsText(s string) string {
	if !strings.Contains(s, `\`) {
		return strings.TrimSpace(s)
	}
	r := strings.NewReplacer(`\\`, `\`, `\;`, ";", `\,`, ",", `\n`, " ", `\N`, " ")
	return strings.TrimSpace(r.Replace(s))
}

// holidays expands the event into holidays.
func (e *icsEvent) holidays() ([]Holiday, error) {
	if e.cancelled {
		return nil, nil
	}
	if !e.hasStart {
		return nil, e.errorf("no DTSTART")
	}
	if !e.dateOnly {
		return nil, e.errorf("not an all-day event (DTSTART;VALUE=DATE:YYYYMMDD); a holiday calendar lists whole days")
	}
	if e.unsupported != "" {
		return nil, e.errorf("%s is not supported; list the dates instead", e.unsupported)
	}
	n := 1
	switch {
	case !e.end.IsZero():
		n = int(e.end.Sub(e.start).Hours() / 24)
		if n < 1 {
			return nil, e.errorf("DTEND is not after DTSTART")
		}
	case e.days > 0:
		n = e.days
	}
	if n > maxEventDays {
		return nil, e.errorf("%d days long, at most %d", n, maxEventDays)
	}
	var years []int // nil: every year
	yearly := false
	if e.rrule != "" {
		var err error
		if years, err = e.yearlyRule(); err != nil {
			return nil, err
		}
		yearly = years == nil
	} else {
		years = []int{e.start.Year()}
	}
	var out []Holiday
	for i := range n {
		d := e.start.AddDate(0, 0, i)
		if yearly {
			out = append(out, Holiday{Date: d.Format("01-02"), Name: e.summary})
			continue
		}
		for _, y := range years {
			dy := time.Date(y, d.Month(), d.Day(), 0, 0, 0, 0, time.UTC)
			if dy.Day() != d.Day() {
				continue // 29 February in a common year
			}
			out = append(out, Holiday{Date: dy.Format(time.DateOnly), Name: e.summary})
			if len(out) > MaxHolidays {
				return nil, fmt.Errorf("%w: more than %d holidays", ErrICS, MaxHolidays)
			}
		}
	}
	return out, nil
}

// yearlyRule checks an RRULE for a fixed date every year and returns the
// years it covers (nil: every year, no COUNT or UNTIL).
func (e *icsEvent) yearlyRule() ([]int, error) {
	count, until := 0, 0
	freq := false
	for _, part := range strings.Split(e.rrule, ";") {
		k, v, _ := strings.Cut(part, "=")
		k = strings.ToUpper(k)
		switch k {
		case "FREQ":
			if !strings.EqualFold(v, "YEARLY") {
				return nil, e.errorf("RRULE %q: only FREQ=YEARLY is supported; list the dates instead", e.rrule)
			}
			freq = true
		case "INTERVAL":
			if v != "1" {
				return nil, e.errorf("RRULE %q: only INTERVAL=1 is supported", e.rrule)
			}
		case "BYMONTH":
			if m, err := strconv.Atoi(v); err != nil || m != int(e.start.Month()) {
				return nil, e.errorf("RRULE %q: BYMONTH must be the month of DTSTART", e.rrule)
			}
		case "BYMONTHDAY":
			if d, err := strconv.Atoi(v); err != nil || d != e.start.Day() {
				return nil, e.errorf("RRULE %q: BYMONTHDAY must be the day of DTSTART", e.rrule)
			}
		case "COUNT":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > MaxHolidays {
				return nil, e.errorf("RRULE %q: COUNT must be 1 to %d", e.rrule, MaxHolidays)
			}
			count = n
		case "UNTIL":
			if len(v) < 8 {
				return nil, e.errorf("RRULE %q: UNTIL is not a date", e.rrule)
			}
			d, err := time.Parse("20060102", v[:8])
			if err != nil {
				return nil, e.errorf("RRULE %q: UNTIL is not a date", e.rrule)
			}
			until = d.Year()
			if d.Before(time.Date(d.Year(), e.start.Month(), e.start.Day(), 0, 0, 0, 0, time.UTC)) {
				until--
			}
		case "WKST":
		default:
			return nil, e.errorf("RRULE %q: %s is not supported (only yearly rules on a fixed date); list the dates instead", e.rrule, k)
		}
	}
	if !freq {
		return nil, e.errorf("RRULE %q: no FREQ", e.rrule)
	}
	first := e.start.Year()
	switch {
	case count > 0:
		until = first + count - 1
	case until == 0:
		return nil, nil
	}
	if until < first {
		return nil, e.errorf("RRULE %q: UNTIL is before DTSTART", e.rrule)
	}
	if until-first >= MaxHolidays {
		return nil, fmt.Errorf("%w: more than %d holidays", ErrICS, MaxHolidays)
	}
	years := make([]int, 0, until-first+1)
	for y := first; y <= until; y++ {
		years = append(years, y)
	}
	return years, nil
}
