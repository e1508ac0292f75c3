package softwareupdate

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func mustCalendar(t *testing.T, c Calendar) *WorkCalendar {
	t.Helper()
	w, err := CompileCalendar(&c)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestWorkingDeadline(t *testing.T) {
	office := Calendar{Holidays: []Holiday{
		{Date: "2026-12-24", Name: "Christmas Eve"}, {Date: "12-25", Name: "Christmas Day"},
		{Date: "2026-12-26", Name: "Boxing Day"}, {Date: "2026-12-28"}, {Date: "2026-12-29", Name: "Closure"},
	}}
	allWeek := Calendar{WorkingDays: "mon-sun", WorkingHours: "02:30-10:00"}
	tests := []struct {
		name    string
		cal     Calendar
		zone    string
		have    time.Time // in zone
		want    time.Time
		wantWhy string // substring; "" means not moved
	}{
		{"working time stays", office, "Europe/Berlin", at(t, "Europe/Berlin", 2026, 12, 8, 12, 0), at(t, "Europe/Berlin", 2026, 12, 8, 12, 0), ""},
		{"countdown fits exactly", office, "Europe/Berlin", at(t, "Europe/Berlin", 2026, 12, 8, 16, 30), at(t, "Europe/Berlin", 2026, 12, 8, 16, 30), ""},
		{"countdown would end after hours", office, "Europe/Berlin", at(t, "Europe/Berlin", 2026, 12, 8, 16, 45), at(t, "Europe/Berlin", 2026, 12, 9, 9, 0),
			"Tue 2026-12-08 16:45 leaves less than the 30m0s countdown before working hours end (09:00-17:00) → Wed 2026-12-09 09:00 Europe/Berlin"},
		{"before hours", office, "Europe/Berlin", at(t, "Europe/Berlin", 2026, 12, 8, 7, 0), at(t, "Europe/Berlin", 2026, 12, 8, 9, 0), "is before working hours"},
		{"Friday 23:59", office, "Europe/Berlin", at(t, "Europe/Berlin", 2026, 12, 4, 23, 59), at(t, "Europe/Berlin", 2026, 12, 7, 9, 0),
			"Fri 2026-12-04 23:59 is after working hours (09:00-17:00) → Mon 2026-12-07 09:00 Europe/Berlin"},
		{"weekend", office, "Europe/Berlin", at(t, "Europe/Berlin", 2026, 12, 12, 10, 0), at(t, "Europe/Berlin", 2026, 12, 14, 9, 0), "is not a working day (mon-fri)"},
		{"Boxing Day", office, "Europe/Berlin", at(t, "Europe/Berlin", 2026, 12, 26, 12, 0), at(t, "Europe/Berlin", 2026, 12, 30, 9, 0),
			"Sat 2026-12-26 12:00 is a holiday (Boxing Day) → Wed 2026-12-30 09:00 Europe/Berlin"},
		{"holiday run spanning a weekend", office, "Europe/Berlin", at(t, "Europe/Berlin", 2026, 12, 24, 10, 0), at(t, "Europe/Berlin", 2026, 12, 30, 9, 0), "is a holiday (Christmas Eve)"},
		{"unnamed holiday", office, "Europe/Berlin", at(t, "Europe/Berlin", 2026, 12, 28, 10, 0), at(t, "Europe/Berlin", 2026, 12, 30, 9, 0), "Mon 2026-12-28 10:00 is a holiday →"},
		{"yearly holiday", office, "Europe/Berlin", at(t, "Europe/Berlin", 2028, 12, 25, 10, 0), at(t, "Europe/Berlin", 2028, 12, 26, 9, 0), "Mon 2028-12-25 10:00 is a holiday (Christmas Day)"},
		// Europe/Berlin springs forward on Sunday 2026-03-29 (02:00 → 03:00).
		{"Berlin weekend into summer time", office, "Europe/Berlin", at(t, "Europe/Berlin", 2026, 3, 27, 18, 0), time.Date(2026, 3, 30, 7, 0, 0, 0, time.UTC), "after working hours"},
		{"Berlin start in the spring-forward gap", allWeek, "Europe/Berlin", at(t, "Europe/Berlin", 2026, 3, 28, 23, 0), time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC), "after working hours"},
		// Berlin falls back on Sunday 2026-10-25 (03:00 → 02:00): 02:30 is its first occurrence (CEST).
		{"Berlin start in the repeated hour", allWeek, "Europe/Berlin", at(t, "Europe/Berlin", 2026, 10, 24, 23, 0), time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC), "after working hours"},
		// America/New_York springs forward on 2026-03-08 and falls back on 2026-11-01.
		{"New York weekend into daylight time", office, "America/New_York", at(t, "America/New_York", 2026, 3, 6, 17, 0), time.Date(2026, 3, 9, 13, 0, 0, 0, time.UTC), "Fri 2026-03-06 17:00 is after working hours"},
		{"New York weekend into standard time", office, "America/New_York", at(t, "America/New_York", 2026, 10, 30, 16, 50), time.Date(2026, 11, 2, 14, 0, 0, 0, time.UTC), "countdown"},
		{"midnight end", Calendar{WorkingHours: "08:00-24:00"}, "America/New_York", at(t, "America/New_York", 2026, 12, 8, 23, 30), at(t, "America/New_York", 2026, 12, 8, 23, 30), ""},
		{"midnight end, too late", Calendar{WorkingHours: "08:00-24:00"}, "America/New_York", at(t, "America/New_York", 2026, 12, 8, 23, 31), at(t, "America/New_York", 2026, 12, 9, 8, 0), "countdown"},
		{"wrapping days", Calendar{WorkingDays: "sun-thu"}, "Asia/Jerusalem", at(t, "Asia/Jerusalem", 2026, 12, 11, 10, 0), at(t, "Asia/Jerusalem", 2026, 12, 13, 9, 0), "Fri 2026-12-11 10:00 is not a working day (sun-thu)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := mustCalendar(t, tc.cal)
			loc := zone(t, tc.zone)
			have, why := WorkingDeadline(w, tc.have, loc)
			if !have.Equal(tc.want) {
				t.Errorf("deadline = %s, want %s", have.In(loc), tc.want.In(loc))
			}
			if tc.wantWhy == "" && why != "" || !strings.Contains(why, tc.wantWhy) {
				t.Errorf("why = %q, want %q", why, tc.wantWhy)
			}
		})
	}
}

func TestWorkingDeadlineNoCalendar(t *testing.T) {
	d := at(t, "Europe/Berlin", 2026, 12, 26, 3, 0)
	if have, why := WorkingDeadline(nil, d, zone(t, "Europe/Berlin")); !have.Equal(d) || why != "" {
		t.Errorf("no calendar: %s %q, want the deadline unmoved", have, why)
	}
	if w, err := CompileCalendar(nil); w != nil || err != nil {
		t.Errorf("CompileCalendar(nil) = %v, %v", w, err)
	}
}

// The scheduler calls Next for every Mac of a policy with a calendar:
// a deadline already in working time costs no allocation.
func TestWorkingDeadlineAllocs(t *testing.T) {
	w := mustCalendar(t, Calendar{Holidays: []Holiday{{Date: "2026-12-25"}, {Date: "01-01"}}})
	loc := zone(t, "Europe/Berlin")
	d := at(t, "Europe/Berlin", 2026, 12, 8, 12, 0)
	if n := testing.AllocsPerRun(100, func() { WorkingDeadline(w, d, loc) }); n != 0 {
		t.Errorf("allocations = %v, want 0", n)
	}
}

func TestGraceEndInWorkingTime(t *testing.T) {
	w := mustCalendar(t, Calendar{})
	loc := zone(t, "Europe/Berlin")
	// span 0: the end of working hours itself is not working time.
	if have, _ := w.Next(at(t, "Europe/Berlin", 2026, 12, 8, 17, 0), 0, loc); !have.Equal(at(t, "Europe/Berlin", 2026, 12, 9, 9, 0)) {
		t.Errorf("17:00 → %s, want the next day 09:00", have.In(loc))
	}
	if have, why := w.Next(at(t, "Europe/Berlin", 2026, 12, 8, 16, 59), 0, loc); !have.Equal(at(t, "Europe/Berlin", 2026, 12, 8, 16, 59)) || why != "" {
		t.Errorf("16:59 → %s %q, want unmoved", have.In(loc), why)
	}
}

func TestCalendarValidation(t *testing.T) {
	now := utc(2026, 12, 1, 0, 0)
	base := Policy{Mode: ModeAutomatic, DelayDays: 7, TimeOfDay: "17:00", TimeZone: "Europe/Berlin"}
	many := make([]Holiday, MaxHolidays+1)
	for i := range many {
		many[i] = Holiday{Date: day("2026-01-01").AddDate(0, 0, i).Format(time.DateOnly)}
	}
	tests := []struct {
		name  string
		cal   Calendar
		mode  Mode
		field string
		want  error
	}{
		{"bad day", Calendar{WorkingDays: "mon-fry"}, "", "calendar.working_days", ErrMalformed},
		{"no day", Calendar{WorkingDays: ","}, "", "calendar.working_days", ErrMalformed},
		{"overnight hours", Calendar{WorkingHours: "17:00-09:00"}, "", "calendar.working_hours", ErrMalformed},
		{"hours too short for the countdown", Calendar{WorkingHours: "09:00-09:20"}, "", "calendar.working_hours", ErrOutOfRange},
		{"hours not a time", Calendar{WorkingHours: "9-17"}, "", "calendar.working_hours", ErrMalformed},
		{"not a day", Calendar{Holidays: []Holiday{{Date: "2026-02-30"}}}, "", "calendar.holidays[0]", ErrMalformed},
		{"not a yearly day", Calendar{Holidays: []Holiday{{Date: "13-01"}}}, "", "calendar.holidays[0]", ErrMalformed},
		{"long name", Calendar{Holidays: []Holiday{{Date: "12-25", Name: strings.Repeat("x", MaxHolidayName+1)}}}, "", "calendar.holidays[0].name", ErrOutOfRange},
		{"too many holidays", Calendar{Holidays: many}, "", "calendar.holidays", ErrOutOfRange},
		{"unmanaged", Calendar{}, ModeUnmanaged, "calendar", ErrNotApplicable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := base
			if tc.mode != "" {
				p = Policy{Mode: tc.mode}
			}
			c := tc.cal
			p.Calendar = &c
			err := p.Validate(now, testCatalog(t))
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want a *ValidationError", err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field || !errors.Is(fe, tc.want) {
				t.Errorf("err = %v, want %s: %v", err, tc.field, tc.want)
			}
		})
	}
	ok := base
	ok.Calendar = &Calendar{WorkingDays: "Mon-Thu,sat", WorkingHours: "08:00-24:00", Holidays: []Holiday{{Date: "02-29", Name: "Leap day"}}}
	if err := ok.Validate(now, testCatalog(t)); err != nil {
		t.Errorf("valid calendar: %v", err)
	}
}

// The scheduler checks each pass that a stored explanation still fits the
// move with Move and Explains, which do not allocate.
func TestMoveAndExplains(t *testing.T) {
	w := mustCalendar(t, Calendar{Holidays: []Holiday{{Date: "2026-12-26", Name: "Boxing Day"}}})
	berlin, lisbon := zone(t, "Europe/Berlin"), zone(t, "Europe/Lisbon")
	from := at(t, "Europe/Berlin", 2026, 12, 26, 12, 0)
	to, moved := w.Move(from, berlin)
	text := w.Explain(from, to, berlin)
	if want := "Sat 2026-12-26 12:00 is a holiday (Boxing Day) → Mon 2026-12-28 09:00 Europe/Berlin"; !moved || text != want {
		t.Fatalf("Move/Explain = %v %q, want %q", moved, text, want)
	}
	if have, why := WorkingDeadline(w, from, berlin); !have.Equal(to) || why != text {
		t.Errorf("WorkingDeadline = %v %q, want what Move and Explain give", have, why)
	}
	for _, tc := range []struct {
		name     string
		text     string
		from, to time.Time
		loc      *time.Location
		want     bool
	}{
		{"same move", text, from, to, berlin, true},
		{"other origin", text, from.Add(time.Hour), to, berlin, false},
		{"other destination", text, from, to.Add(time.Hour), berlin, false},
		{"other zone", text, from, to, lisbon, false},
		{"empty", "", from, to, berlin, false},
		{"short", "x", from, to, berlin, false},
	} {
		if have := Explains(tc.text, tc.from, tc.to, tc.loc); have != tc.want {
			t.Errorf("%s: Explains = %v, want %v", tc.name, have, tc.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() {
		to, _ := w.Move(from, berlin)
		Explains(text, from, to, berlin)
	}); n != 0 {
		t.Errorf("Move + Explains allocate %v times, want 0", n)
	}
}

// BenchmarkCalendarMove: what a scheduler pass adds per Mac with a business
// calendar: Move, and for a moved deadline Explains on the stored text.
func BenchmarkCalendarMove(b *testing.B) {
	c := Calendar{Holidays: []Holiday{{Date: "2026-12-24"}, {Date: "12-25", Name: "Christmas Day"}, {Date: "12-26", Name: "Boxing Day"}}}
	w, err := CompileCalendar(&c)
	if err != nil {
		b.Fatal(err)
	}
	loc := zone(b, "Europe/Berlin")
	for _, bc := range []struct {
		name string
		d    time.Time
	}{
		{"in-hours", at(b, "Europe/Berlin", 2026, 12, 8, 12, 0)},
		{"holiday", at(b, "Europe/Berlin", 2026, 12, 26, 12, 0)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			to, _ := w.Move(bc.d, loc)
			text := w.Explain(bc.d, to, loc)
			for b.Loop() {
				if to, moved := w.Move(bc.d, loc); moved {
					Explains(text, bc.d, to, loc)
				}
			}
		})
	}
}
