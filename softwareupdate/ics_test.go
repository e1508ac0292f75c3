package softwareupdate

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestParseICS(t *testing.T) {
	data, err := os.ReadFile("testdata/holidays.ics")
	if err != nil {
		t.Fatal(err)
	}
	have, err := ParseICS(data)
	if err != nil {
		t.Fatal(err)
	}
	want := []Holiday{
		{Date: "2026-12-24", Name: "Christmas, office closed"},
		{Date: "2026-12-25", Name: "Christmas, office closed"},
		{Date: "2026-12-26", Name: "Christmas, office closed"},
		{Date: "01-01", Name: "New Year's Day"},
		{Date: "2026-05-01", Name: "Labour Day"},
		{Date: "2027-05-01", Name: "Labour Day"},
	}
	if !slices.Equal(have, want) {
		t.Errorf("holidays =\n%v\nwant\n%v", have, want)
	}
	// What ParseICS gives is a valid calendar.
	if _, err := CompileCalendar(&Calendar{Holidays: have}); err != nil {
		t.Errorf("compile parsed holidays: %v", err)
	}
}

func TestParseICSUntil(t *testing.T) {
	ics := "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20241003\nRRULE:FREQ=YEARLY;UNTIL=20261002T000000Z\nSUMMARY:Unity Day\nEND:VEVENT\nEND:VCALENDAR\n"
	have, err := ParseICS([]byte(ics))
	if err != nil {
		t.Fatal(err)
	}
	if want := []Holiday{{"2024-10-03", "Unity Day"}, {"2025-10-03", "Unity Day"}}; !slices.Equal(have, want) {
		t.Errorf("holidays = %v, want %v", have, want)
	}
}

func TestParseICSBad(t *testing.T) {
	event := func(lines ...string) string {
		return "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:Thanksgiving\r\n" + strings.Join(lines, "\r\n") + "\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	}
	tests := []struct {
		name, ics, want string
	}{
		{"not ics", "hello", "not an iCalendar file"},
		{"empty", "", "not an iCalendar file"},
		{"no events", "BEGIN:VCALENDAR\nEND:VCALENDAR\n", "no all-day events"},
		{"truncated", "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20261126\n", "no END:VEVENT"},
		{"no end of calendar", "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20261126\nEND:VEVENT\n", "no END:VCALENDAR"},
		{"garbage line", "BEGIN:VCALENDAR\nnonsense\nEND:VCALENDAR\n", "line 2: not a property line"},
		{"timed event", event("DTSTART:20261126T090000Z"), `"Thanksgiving"): not an all-day event`},
		{"bad date", event("DTSTART;VALUE=DATE:20261326"), "not a date"},
		{"no start", event("DTEND;VALUE=DATE:20261127"), "no DTSTART"},
		{"end before start", event("DTSTART;VALUE=DATE:20261126", "DTEND;VALUE=DATE:20261126"), "DTEND is not after DTSTART"},
		{"too long", event("DTSTART;VALUE=DATE:20260101", "DTEND;VALUE=DATE:20260301"), "59 days long"},
		{"weekday rule", event("DTSTART;VALUE=DATE:20261126", "RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=4TH"), "BYDAY is not supported"},
		{"monthly rule", event("DTSTART;VALUE=DATE:20261126", "RRULE:FREQ=MONTHLY"), "only FREQ=YEARLY"},
		{"other month", event("DTSTART;VALUE=DATE:20261126", "RRULE:FREQ=YEARLY;BYMONTH=12"), "BYMONTH must be the month of DTSTART"},
		{"exdate", event("DTSTART;VALUE=DATE:20261126", "RRULE:FREQ=YEARLY", "EXDATE;VALUE=DATE:20271126"), "EXDATE is not supported"},
		{"bad duration", event("DTSTART;VALUE=DATE:20261126", "DURATION:PT1H"), "only whole days"},
		{"too big", "BEGIN:VCALENDAR\n" + strings.Repeat("X-PAD:"+strings.Repeat("x", 1000)+"\n", 300), "at most 262144"},
		{"too many", event("DTSTART;VALUE=DATE:20000101", "RRULE:FREQ=YEARLY;COUNT=501"), "COUNT must be 1 to 500"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseICS([]byte(tc.ics))
			if !errors.Is(err, ErrICS) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
	// Many events: the cap on holidays holds across events.
	var b strings.Builder
	b.WriteString("BEGIN:VCALENDAR\n")
	for i := range 40 {
		b.WriteString("BEGIN:VEVENT\nDTSTART;VALUE=DATE:" + day("2026-01-01").AddDate(0, 0, i*15).Format("20060102") + "\nDURATION:P2W\nEND:VEVENT\n")
	}
	b.WriteString("END:VCALENDAR\n")
	if _, err := ParseICS([]byte(b.String())); err == nil || !strings.Contains(err.Error(), "more than 500 holidays") {
		t.Errorf("560 days: err = %v, want the holiday cap", err)
	}
}

func FuzzParseICS(f *testing.F) {
	if data, err := os.ReadFile("testdata/holidays.ics"); err == nil {
		f.Add(data)
	}
	f.Add([]byte("BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20261126\nRRULE:FREQ=YEARLY;UNTIL=2030\nEND:VEVENT\nEND:VCALENDAR\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		hs, err := ParseICS(data)
		if err != nil {
			return
		}
		if len(hs) == 0 || len(hs) > MaxHolidays {
			t.Fatalf("%d holidays", len(hs))
		}
		if _, err := CompileCalendar(&Calendar{Holidays: hs}); err != nil {
			t.Fatalf("parsed holidays do not compile: %v", err)
		}
	})
}
