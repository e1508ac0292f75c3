package console

import (
	"net/url"
	"strings"

	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// calendarFromForm reads the policy editor's business calendar: none when
// its box is unticked and its fields are empty. Holidays are one a line,
// a date ("YYYY-MM-DD", or "MM-DD" for every year) then an optional name;
// Policy.Validate checks them (and caps their number) like the API does.
func calendarFromForm(f url.Values) *softwareupdate.Calendar {
	days, hours := strings.TrimSpace(f.Get("working_days")), strings.TrimSpace(f.Get("working_hours"))
	lines := strings.Split(strings.ReplaceAll(f.Get("holidays"), "\r", ""), "\n")
	var hs []softwareupdate.Holiday
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		date, name, _ := strings.Cut(l, " ")
		if d, n, ok := strings.Cut(date, "="); ok {
			date, name = d, n+" "+name
		}
		hs = append(hs, softwareupdate.Holiday{Date: date, Name: strings.TrimSpace(name)})
	}
	if f.Get("calendar") != "true" && days == "" && hours == "" && len(hs) == 0 {
		return nil
	}
	return &softwareupdate.Calendar{WorkingDays: days, WorkingHours: hours, Holidays: hs}
}

// holidayLines writes a calendar's holidays as the editor reads them.
func holidayLines(c *softwareupdate.Calendar) string {
	if c == nil {
		return ""
	}
	var b strings.Builder
	for _, h := range c.Holidays {
		b.WriteString(h.Date)
		if h.Name != "" {
			b.WriteString(" " + h.Name)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// movedReasons lists the first distinct explanations of deadlines a
// what-if's calendar moves.
func movedReasons(res *scheduler.WhatIfResult) []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range res.Rows {
		if r.DeadlineMoved != "" && !seen[r.DeadlineMoved] && len(out) < 5 {
			seen[r.DeadlineMoved] = true
			out = append(out, r.DeadlineMoved)
		}
	}
	return out
}
