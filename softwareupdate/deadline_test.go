package softwareupdate

import (
	"testing"
	"time"
)

func TestWallTimeDST(t *testing.T) {
	tests := []struct {
		name    string
		zone    string
		y       int
		m       time.Month
		d, h, i int
		want    time.Time // UTC
	}{
		{"New York, ordinary day", "America/New_York", 2026, 9, 1, 17, 0, utc(2026, 9, 1, 21, 0)},
		// 2026-03-08: clocks jump from 02:00 EST to 03:00 EDT. 02:30 does
		// not exist: it moves forward by the gap to 03:30 EDT.
		{"New York, spring-forward gap", "America/New_York", 2026, 3, 8, 2, 30, utc(2026, 3, 8, 7, 30)},
		{"New York, just after the gap", "America/New_York", 2026, 3, 8, 3, 0, utc(2026, 3, 8, 7, 0)},
		{"New York, just before the gap", "America/New_York", 2026, 3, 8, 1, 59, utc(2026, 3, 8, 6, 59)},
		// 2026-11-01: 01:30 happens twice (EDT, then EST): the first one.
		{"New York, fall-back repeat", "America/New_York", 2026, 11, 1, 1, 30, utc(2026, 11, 1, 5, 30)},
		{"New York, after fall-back", "America/New_York", 2026, 11, 1, 9, 0, utc(2026, 11, 1, 14, 0)},
		// 2026-03-29: Berlin jumps from 02:00 CET to 03:00 CEST.
		{"Berlin, spring-forward gap", "Europe/Berlin", 2026, 3, 29, 2, 30, utc(2026, 3, 29, 1, 30)},
		// 2026-10-25: 02:30 happens twice (CEST, then CET): the first one.
		// (time.Date alone picks the second one here but the first in New York.)
		{"Berlin, fall-back repeat", "Europe/Berlin", 2026, 10, 25, 2, 30, utc(2026, 10, 25, 0, 30)},
		{"Berlin, winter", "Europe/Berlin", 2026, 12, 1, 17, 0, utc(2026, 12, 1, 16, 0)},
		{"day overflow normalizes", "Europe/Berlin", 2026, 8, 32, 9, 0, utc(2026, 9, 1, 7, 0)},
		{"no DST", "Asia/Tokyo", 2026, 3, 8, 2, 30, utc(2026, 3, 7, 17, 30)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := wallTime(tt.y, tt.m, tt.d, tt.h, tt.i, zone(t, tt.zone))
			if !got.Equal(tt.want) {
				t.Errorf("wallTime = %v (%v), want %v", got.UTC(), got, tt.want)
			}
		})
	}
}

func TestPersonalDeadline(t *testing.T) {
	required := Target{Status: StatusRequired, Version: v("26.6.1")}
	posted := func(d string) Target { t := required; t.PostingDate = day(d); return t }
	manualNY := Policy{Mode: ModeManual, MinimumVersion: "26.6.1", Date: "2026-09-01", TimeOfDay: "17:00", TimeZone: "America/New_York"}
	manualWith := func(edit func(p *Policy)) Policy { p := manualNY; edit(&p); return p }
	autoNY := Policy{Mode: ModeAutomatic, DelayDays: 7, TimeOfDay: "09:00", TimeZone: "America/New_York"}
	autoBerlin := Policy{Mode: ModeAutomatic, DelayDays: 7, TimeOfDay: "10:00", TimeZone: "Europe/Berlin"}
	longAgo := utc(2026, 1, 1, 0, 0)
	tokyo := zone(t, "Asia/Tokyo")
	tests := []struct {
		name      string
		policy    Policy
		target    Target
		firstSeen time.Time
		ex        *Exception
		deviceLoc *time.Location
		want      time.Time
	}{
		{"manual, New York summer", manualNY, required, longAgo, nil, nil, utc(2026, 9, 1, 21, 0)},
		{"manual, on the spring-forward night", manualWith(func(p *Policy) { p.Date, p.TimeOfDay = "2026-03-08", "02:30" }), required, longAgo, nil, nil, utc(2026, 3, 8, 7, 30)},
		{"manual, Berlin winter", manualWith(func(p *Policy) { p.TimeZone, p.Date = "Europe/Berlin", "2026-12-01" }), required, longAgo, nil, nil, utc(2026, 12, 1, 16, 0)},
		// Posted 2026-03-01 (EST) + 7 days = 2026-03-08, the day New York
		// moves to EDT: 09:00 EDT is 13:00 UTC, not 14:00.
		{"automatic, delay across spring-forward", autoNY, posted("2026-03-01"), longAgo, nil, nil, utc(2026, 3, 8, 13, 0)},
		// Posted 2026-10-20 (CEST) + 7 days = 2026-10-27 (CET): 10:00 CET.
		{"automatic, delay across fall-back", autoBerlin, posted("2026-10-20"), longAgo, nil, nil, utc(2026, 10, 27, 9, 0)},
		{"automatic, 3 months", Policy{Mode: ModeAutomatic, DelayDays: 90, TimeOfDay: "09:00", TimeZone: "UTC"}, posted("2026-08-17"), longAgo, nil, nil, utc(2026, 11, 15, 9, 0)},
		// First seen 2026-08-30 10:00 EDT: 5 days later is 09-04 10:00,
		// rounded up to the policy's 17:00.
		{"minimum notice", manualNY, required, at(t, "America/New_York", 2026, 8, 30, 10, 0), nil, nil, utc(2026, 9, 4, 21, 0)},
		{"minimum notice at the policy time", manualNY, required, at(t, "America/New_York", 2026, 8, 30, 17, 0), nil, nil, utc(2026, 9, 4, 21, 0)},
		{"minimum notice, one minute later", manualNY, required, at(t, "America/New_York", 2026, 8, 30, 17, 1), nil, nil, utc(2026, 9, 5, 21, 0)},
		{"notice does not bind", manualNY, required, at(t, "America/New_York", 2026, 8, 20, 10, 0), nil, nil, utc(2026, 9, 1, 21, 0)},
		{"custom notice", manualWith(func(p *Policy) { p.MinimumNoticeDays = 10 }), required, at(t, "America/New_York", 2026, 8, 30, 10, 0), nil, nil, utc(2026, 9, 9, 21, 0)},
		// Notice is exact hours: first seen 2026-03-05 09:30 EST (14:30 UTC);
		// 120 hours later is 2026-03-10 14:30 UTC = 10:30 EDT, past 09:00,
		// so the deadline is 2026-03-11 09:00 EDT.
		{"notice across spring-forward", autoNY, posted("2026-02-01"), at(t, "America/New_York", 2026, 3, 5, 9, 30), nil, nil, utc(2026, 3, 11, 13, 0)},
		// Ring offsets are calendar days: 2026-10-23 17:00 CEST + 3 days =
		// 2026-10-26 17:00 CET (73 hours later).
		{"ring offset across fall-back", Policy{Mode: ModeManual, MinimumVersion: "26.6.1", Date: "2026-10-23", TimeOfDay: "17:00", TimeZone: "Europe/Berlin", RingOffsetDays: 3},
			required, longAgo, nil, nil, utc(2026, 10, 26, 16, 0)},
		{"ring offset after notice", manualWith(func(p *Policy) { p.RingOffsetDays = 7 }), required, at(t, "America/New_York", 2026, 8, 30, 10, 0), nil, nil, utc(2026, 9, 11, 21, 0)},
		// Exempt until 09-10 12:00 UTC: fresh notice from then, 09-15 08:00
		// EDT, rounded up to 17:00.
		{"exemption", manualNY, required, longAgo, &Exception{Exempt: true, Expires: utc(2026, 9, 10, 12, 0)}, nil, utc(2026, 9, 15, 21, 0)},
		{"short exemption", manualNY, required, longAgo, &Exception{Exempt: true, Expires: utc(2026, 8, 1, 0, 0)}, nil, utc(2026, 9, 1, 21, 0)},
		{"deadline override", manualNY, required, longAgo, &Exception{DeadlineOverride: utc(2026, 9, 20, 15, 0), Expires: utc(2026, 9, 21, 0, 0)}, nil, utc(2026, 9, 20, 15, 0)},
		{"override earlier than the policy", manualNY, required, longAgo, &Exception{DeadlineOverride: utc(2026, 8, 25, 15, 0), Expires: utc(2026, 9, 21, 0, 0)}, nil, utc(2026, 9, 1, 21, 0)},
		{"device-local, Tokyo", manualWith(func(p *Policy) { p.TimeZone = DeviceLocal }), required, longAgo, nil, tokyo, utc(2026, 9, 1, 8, 0)},
		// Zone unknown: the last zone on Earth, so no Mac is early.
		{"device-local, zone unknown, no fallback", manualWith(func(p *Policy) { p.TimeZone = DeviceLocal }), required, longAgo, nil, nil, utc(2026, 9, 2, 5, 0)},
		// Zone unknown: the policy's fallback zone (17:00 in Berlin, CEST).
		{"device-local, zone unknown, fallback", manualWith(func(p *Policy) { p.TimeZone, p.FallbackTimeZone = DeviceLocal, "Europe/Berlin" }), required, longAgo, nil, nil, utc(2026, 9, 1, 15, 0)},
		{"device-local, Tokyo over the fallback", manualWith(func(p *Policy) { p.TimeZone, p.FallbackTimeZone = DeviceLocal, "Europe/Berlin" }), required, longAgo, nil, tokyo, utc(2026, 9, 1, 8, 0)},
		{"compliant: no deadline", manualNY, Target{Status: StatusCompliant}, longAgo, nil, nil, time.Time{}},
		{"unsupported: no deadline", manualNY, Target{Status: StatusUnsupported}, longAgo, nil, nil, time.Time{}},
		{"bad zone", manualWith(func(p *Policy) { p.TimeZone = "Nowhere" }), required, longAgo, nil, nil, time.Time{}},
		{"bad time", manualWith(func(p *Policy) { p.TimeOfDay = "5pm" }), required, longAgo, nil, nil, time.Time{}},
		{"automatic without posting date", autoNY, required, longAgo, nil, nil, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := PersonalDeadline(tt.policy, tt.target, tt.firstSeen, tt.ex, tt.deviceLoc)
			if !got.Equal(tt.want) {
				t.Errorf("PersonalDeadline = %v, want %v", got.UTC(), tt.want)
			}
			if !got.IsZero() && !tt.firstSeen.IsZero() {
				if notice := time.Duration(tt.policy.NoticeDays()) * 24 * time.Hour; got.Sub(tt.firstSeen) < notice {
					t.Errorf("only %v of notice, want at least %v", got.Sub(tt.firstSeen), notice)
				}
			}
		})
	}
}

func TestPolicyInstant(t *testing.T) {
	p := Policy{Mode: ModeAutomatic, DelayDays: 14, TimeOfDay: "09:00", TimeZone: "America/New_York"}
	got := PolicyInstant(p, Target{Status: StatusRequired, PostingDate: day("2026-08-06")}, nil)
	if want := utc(2026, 8, 20, 13, 0); !got.Equal(want) {
		t.Errorf("PolicyInstant = %v, want %v", got, want)
	}
}

// TestMinimumNoticeProperty: whatever the policy instant, the deadline
// never comes sooner than the minimum notice after first sight, in every
// zone, across a whole year of DST changes.
func TestMinimumNoticeProperty(t *testing.T) {
	tgt := Target{Status: StatusRequired, Version: v("26.6.1"), PostingDate: day("2026-01-01")}
	for _, z := range []string{"America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Pacific/Apia", "UTC"} {
		p := Policy{Mode: ModeAutomatic, DelayDays: 1, TimeOfDay: "02:30", TimeZone: z, RingOffsetDays: 2}
		for first := utc(2026, 1, 1, 0, 17); first.Year() == 2026; first = first.Add(7*time.Hour + 13*time.Minute) {
			d := PersonalDeadline(p, tgt, first, nil, nil)
			if d.Sub(first) < 5*24*time.Hour {
				t.Fatalf("%s: first seen %v, deadline %v: less than 5 days", z, first, d)
			}
			if d.Sub(first) > 9*24*time.Hour {
				t.Fatalf("%s: first seen %v, deadline %v: more than notice + ring + a day", z, first, d)
			}
		}
	}
}
