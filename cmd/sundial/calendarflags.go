package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// calendarFlags adds the business calendar flags to a policy command and
// returns the function that sets p.Calendar from them: no calendar flag
// means no calendar (policy set replaces the whole policy, so leaving
// them out clears a calendar).
func calendarFlags(cmd *cobra.Command) func(p *softwareupdate.Policy) error {
	var days, hours, ics string
	var holidays []string
	f := cmd.Flags()
	f.StringVar(&days, "working-days", "", "business calendar: working days, e.g. mon-fri (the default with a calendar) or sun-thu")
	f.StringVar(&hours, "working-hours", "", "business calendar: working hours HH:MM-HH:MM in each Mac's zone (default 09:00-17:00)")
	f.StringSliceVar(&holidays, "holidays", nil, "business calendar: holidays YYYY-MM-DD (or MM-DD every year), optionally =Name, comma separated")
	f.StringVar(&ics, "holidays-ics", "", fmt.Sprintf("business calendar: an iCalendar file of all-day holidays (at most %d KB)", softwareupdate.MaxICSBytes>>10))
	for flag, field := range map[string]string{"working-days": "calendar.working_days", "working-hours": "calendar.working_hours", "holidays": "calendar.holidays"} {
		setAPIField(cmd, flag, field)
	}
	return func(p *softwareupdate.Policy) error {
		if !f.Changed("working-days") && !f.Changed("working-hours") && !f.Changed("holidays") && !f.Changed("holidays-ics") {
			return nil
		}
		c := &softwareupdate.Calendar{WorkingDays: days, WorkingHours: hours}
		for _, h := range holidays {
			date, name, _ := strings.Cut(strings.TrimSpace(h), "=")
			c.Holidays = append(c.Holidays, softwareupdate.Holiday{Date: strings.TrimSpace(date), Name: strings.TrimSpace(name)})
		}
		if ics != "" {
			hs, err := readICS(ics)
			if err != nil {
				return usageError{fmt.Errorf("--holidays-ics: %w", err)}
			}
			c.Holidays = append(c.Holidays, hs...)
		}
		p.Calendar = c
		return nil
	}
}

// readICS reads at most MaxICSBytes (+1, so ParseICS can tell a file that
// is too big) and parses its holidays.
func readICS(path string) ([]softwareupdate.Holiday, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, softwareupdate.MaxICSBytes+1))
	if err != nil {
		return nil, err
	}
	return softwareupdate.ParseICS(data)
}

// calendarLines describes a policy's business calendar for policy show.
func calendarLines(c *softwareupdate.Calendar) string {
	if c == nil {
		return "calendar:  none (deadlines stay where the policy puts them)\n"
	}
	days, hours := c.WorkingDays, c.WorkingHours
	if days == "" {
		days = softwareupdate.DefaultWorkingDays
	}
	if hours == "" {
		hours = softwareupdate.DefaultWorkingHours
	}
	var b strings.Builder
	fmt.Fprintf(&b, "calendar:  %s %s in each Mac's zone; %d %s\n", days, hours, len(c.Holidays), plural(len(c.Holidays), "holiday", "holidays"))
	const shown = 12
	for i, h := range c.Holidays {
		if i == shown {
			fmt.Fprintf(&b, "           ... and %d more (-o json)\n", len(c.Holidays)-shown)
			break
		}
		fmt.Fprintf(&b, "           %s %s\n", h.Date, h.Name)
	}
	return b.String()
}

// whatIfMoves says how many deadlines the calendar would move, with the
// first few distinct explanations.
func whatIfMoves(res *scheduler.WhatIfResult) string {
	if res.MovedByCalendar == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "moved by the business calendar: %d\n", res.MovedByCalendar)
	seen := map[string]bool{}
	for _, r := range res.Rows {
		if r.DeadlineMoved == "" || seen[r.DeadlineMoved] {
			continue
		}
		if len(seen) == 5 {
			b.WriteString("  ... (-o json for every Mac)\n")
			break
		}
		seen[r.DeadlineMoved] = true
		fmt.Fprintf(&b, "  %s\n", r.DeadlineMoved)
	}
	return b.String()
}
