package softwareupdate

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseDelay(t *testing.T) {
	tests := []struct {
		have string
		want int
		err  error
	}{
		{"1d", 1, nil}, {"2d", 2, nil}, {"1w", 7, nil}, {"2w", 14, nil}, {"3w", 21, nil},
		{"1mo", 30, nil}, {"2mo", 60, nil}, {"3mo", 90, nil},
		{"10", 10, nil}, {"10d", 10, nil}, {"92", 92, nil}, {"1", 1, nil},
		{"0", 0, ErrOutOfRange}, {"93", 0, ErrOutOfRange}, {"-3", 0, ErrMalformed}, {"+3", 0, ErrMalformed},
		{"", 0, ErrMalformed}, {"d", 0, ErrMalformed}, {"4mo", 0, ErrMalformed}, {"1.5", 0, ErrMalformed},
		{"99999999999999999999", 0, ErrMalformed},
	}
	for _, tt := range tests {
		got, err := ParseDelay(tt.have)
		if got != tt.want || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
			t.Errorf("ParseDelay(%q) = %d, %v; want %d, %v", tt.have, got, err, tt.want, tt.err)
		}
	}
}

func TestParseClock(t *testing.T) {
	tests := []struct {
		have string
		want clock
		ok   bool
	}{
		{"00:00", clock{0, 0}, true}, {"09:05", clock{9, 5}, true}, {"23:59", clock{23, 59}, true},
		{"24:00", clock{}, false}, {"12:60", clock{}, false}, {"9:00", clock{}, false}, {"09-00", clock{}, false},
		{"0900", clock{}, false}, {"", clock{}, false}, {"ab:cd", clock{}, false}, {"09:00 ", clock{}, false},
	}
	for _, tt := range tests {
		got, err := parseClock(tt.have)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("parseClock(%q) = %v, %v; want %v, ok %v", tt.have, got, err, tt.want, tt.ok)
		}
	}
}

func TestPolicyValidate(t *testing.T) {
	cat := testCatalog(t)
	now := utc(2026, 8, 22, 12, 0)
	automatic := Policy{Mode: ModeAutomatic, DelayDays: 14, TimeOfDay: "09:00", TimeZone: "America/New_York"}
	manual := Policy{Mode: ModeManual, MinimumVersion: "26.6.1", Date: "2026-09-01", TimeOfDay: "17:00", TimeZone: "Europe/Berlin"}
	tests := []struct {
		name  string
		base  Policy
		edit  func(p *Policy)
		field string // "" = valid
		err   error
	}{
		{"automatic", automatic, func(p *Policy) {}, "", nil},
		{"manual", manual, func(p *Policy) {}, "", nil},
		{"manual device-local", manual, func(p *Policy) { p.TimeZone, p.FallbackTimeZone = DeviceLocal, "Europe/Berlin" }, "", nil},
		{"device-local without fallback", manual, func(p *Policy) { p.TimeZone = DeviceLocal }, "fallback_time_zone", ErrMissing},
		{"device-local, bad fallback", manual, func(p *Policy) { p.TimeZone, p.FallbackTimeZone = DeviceLocal, "Mars/Olympus" }, "fallback_time_zone", ErrUnknownTimeZone},
		{"fallback with a fixed zone", manual, func(p *Policy) { p.FallbackTimeZone = "Europe/Berlin" }, "fallback_time_zone", ErrNotApplicable},
		{"unmanaged", Policy{Mode: ModeUnmanaged}, func(p *Policy) {}, "", nil},
		{"all options", automatic, func(p *Policy) {
			p.AllowMajorUpgrades, p.MinimumNoticeDays, p.RingOffsetDays = true, 10, 7
			p.DetailsURL, p.Path = "https://it.example.com/updates", PathDeclarative
		}, "", nil},
		{"unknown version allowed", manual, func(p *Policy) { p.MinimumVersion, p.AllowUnknownVersion = "26.6.5", true }, "", nil},

		{"setup minimum off", manual, func(p *Policy) { p.SetupMinimum = SetupMinimumOff }, "", nil},
		{"setup minimum required", automatic, func(p *Policy) { p.SetupMinimum = SetupMinimumRequired }, "", nil},
		{"bad setup minimum", manual, func(p *Policy) { p.SetupMinimum = "sometimes" }, "setup_minimum", ErrMalformed},

		{"no mode", Policy{}, func(p *Policy) {}, "mode", ErrMissing},
		{"bad mode", automatic, func(p *Policy) { p.Mode = "sometimes" }, "mode", ErrMalformed},
		{"no delay", automatic, func(p *Policy) { p.DelayDays = 0 }, "delay_days", ErrMissing},
		{"negative delay", automatic, func(p *Policy) { p.DelayDays = -1 }, "delay_days", ErrOutOfRange},
		{"absurd delay", automatic, func(p *Policy) { p.DelayDays = 365 }, "delay_days", ErrOutOfRange},
		{"no time", automatic, func(p *Policy) { p.TimeOfDay = "" }, "time_of_day", ErrMissing},
		{"bad time", automatic, func(p *Policy) { p.TimeOfDay = "5pm" }, "time_of_day", ErrMalformed},
		{"no zone", automatic, func(p *Policy) { p.TimeZone = "" }, "time_zone", ErrMissing},
		{"unknown zone", automatic, func(p *Policy) { p.TimeZone = "Mars/Olympus_Mons" }, "time_zone", ErrUnknownTimeZone},
		{"Local zone", automatic, func(p *Policy) { p.TimeZone = "Local" }, "time_zone", ErrUnknownTimeZone},
		{"path zone", automatic, func(p *Policy) { p.TimeZone = "../../etc/passwd" }, "time_zone", ErrUnknownTimeZone},
		{"device-local automatic", automatic, func(p *Policy) { p.TimeZone = DeviceLocal }, "time_zone", ErrNotApplicable},
		{"version in automatic", automatic, func(p *Policy) { p.MinimumVersion = "26.6.1" }, "minimum_version", ErrNotApplicable},
		{"negative notice", automatic, func(p *Policy) { p.MinimumNoticeDays = -2 }, "minimum_notice_days", ErrOutOfRange},
		{"absurd notice", automatic, func(p *Policy) { p.MinimumNoticeDays = 400 }, "minimum_notice_days", ErrOutOfRange},
		{"negative ring", automatic, func(p *Policy) { p.RingOffsetDays = -3 }, "ring_offset_days", ErrOutOfRange},
		{"absurd ring", automatic, func(p *Policy) { p.RingOffsetDays = 31 }, "ring_offset_days", ErrOutOfRange},
		{"bad path", automatic, func(p *Policy) { p.Path = "carrier-pigeon" }, "path", ErrMalformed},
		{"bad details URL", automatic, func(p *Policy) { p.DetailsURL = "javascript:alert(1)" }, "details_url", ErrMalformed},
		{"relative details URL", automatic, func(p *Policy) { p.DetailsURL = "/updates" }, "details_url", ErrMalformed},

		{"no version", manual, func(p *Policy) { p.MinimumVersion = "" }, "minimum_version", ErrMissing},
		{"malformed version", manual, func(p *Policy) { p.MinimumVersion = "Sequoia" }, "minimum_version", ErrMalformed},
		{"absurd version", manual, func(p *Policy) { p.MinimumVersion = "260.1" }, "minimum_version", ErrOutOfRange},
		{"unknown version", manual, func(p *Policy) { p.MinimumVersion = "26.6.5" }, "minimum_version", ErrUnknownVersion},
		{"no date", manual, func(p *Policy) { p.Date = "" }, "date", ErrMissing},
		{"bad date", manual, func(p *Policy) { p.Date = "2026-02-30" }, "date", ErrMalformed},
		{"us date", manual, func(p *Policy) { p.Date = "09/01/2026" }, "date", ErrMalformed},
		{"past date", manual, func(p *Policy) { p.Date = "2026-08-21" }, "date", ErrDeadlinePast},
		// 2026-08-22 13:00 in Berlin is 11:00 UTC, before now (12:00 UTC).
		{"past hour today", manual, func(p *Policy) { p.Date, p.TimeOfDay = "2026-08-22", "13:00" }, "date", ErrDeadlinePast},
		// 23:00 device-local on 2026-08-22 has passed at UTC+14 (09:00 UTC).
		{"past somewhere device-local", manual, func(p *Policy) {
			p.Date, p.TimeOfDay, p.TimeZone, p.FallbackTimeZone = "2026-08-22", "23:00", DeviceLocal, "UTC"
		}, "date", ErrDeadlinePast},
		{"far future", manual, func(p *Policy) { p.Date = "2031-01-01" }, "date", ErrOutOfRange},
		{"delay in manual", manual, func(p *Policy) { p.DelayDays = 7 }, "delay_days", ErrNotApplicable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.base
			tt.edit(&p)
			err := p.Validate(now, cat)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.err) {
				t.Fatalf("Validate: err = %v, want %v", err, tt.err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Errorf("Validate: first field error %+v, want field %q", fe, tt.field)
			}
			if !strings.HasPrefix(err.Error(), "invalid policy: ") || !strings.Contains(err.Error(), tt.field) {
				t.Errorf("message %q does not name the field", err)
			}
		})
	}
}

func TestPolicyValidateListsEveryProblem(t *testing.T) {
	p := Policy{Mode: ModeManual, MinimumVersion: "x", Date: "tomorrow", TimeOfDay: "25:00", TimeZone: "Nowhere/City", RingOffsetDays: -1}
	err := p.Validate(utc(2026, 8, 22, 12, 0), nil)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v, want *ValidationError", err)
	}
	got := map[string]bool{}
	for _, f := range ve.Fields {
		got[f.Field] = true
	}
	for _, want := range []string{"minimum_version", "date", "time_of_day", "time_zone", "ring_offset_days"} {
		if !got[want] {
			t.Errorf("no error for %s in %v", want, err)
		}
	}
}

func TestPolicyValidateNilCatalog(t *testing.T) {
	p := Policy{Mode: ModeManual, MinimumVersion: "15.7.9", Date: "2026-09-01", TimeOfDay: "17:00", TimeZone: "UTC"}
	if err := p.Validate(utc(2026, 8, 22, 12, 0), nil); !errors.Is(err, ErrUnknownVersion) {
		t.Errorf("nil catalog: err = %v, want ErrUnknownVersion", err)
	}
}

func TestExceptionValidate(t *testing.T) {
	now := utc(2026, 8, 22, 12, 0)
	base := Exception{Exempt: true, Expires: now.Add(7 * 24 * time.Hour), Reason: "travelling, no bandwidth", GrantedBy: "alice@example.com"}
	tests := []struct {
		name  string
		edit  func(e *Exception)
		field string
		err   error
	}{
		{"exempt", func(e *Exception) {}, "", nil},
		{"override", func(e *Exception) { e.Exempt, e.DeadlineOverride = false, now.Add(48*time.Hour) }, "", nil},
		{"override at expiry", func(e *Exception) { e.Exempt, e.DeadlineOverride = false, e.Expires }, "", nil},
		{"neither", func(e *Exception) { e.Exempt = false }, "exempt", ErrMissing},
		{"both", func(e *Exception) { e.DeadlineOverride = now.Add(48 * time.Hour) }, "exempt", ErrMalformed},
		{"no expiry", func(e *Exception) { e.Expires = time.Time{} }, "expires", ErrMissing},
		{"expired", func(e *Exception) { e.Expires = now.Add(-time.Minute) }, "expires", ErrDeadlinePast},
		{"too long", func(e *Exception) { e.Expires = now.AddDate(2, 0, 0) }, "expires", ErrOutOfRange},
		{"override past", func(e *Exception) { e.Exempt, e.DeadlineOverride = false, now.Add(-time.Hour) }, "deadline_override", ErrDeadlinePast},
		{"override after expiry", func(e *Exception) { e.Exempt, e.DeadlineOverride = false, e.Expires.Add(time.Hour) }, "deadline_override", ErrOutOfRange},
		{"no reason", func(e *Exception) { e.Reason = "" }, "reason", ErrMissing},
		{"long reason", func(e *Exception) { e.Reason = strings.Repeat("x", MaxExceptionReason+1) }, "reason", ErrOutOfRange},
		{"no grantor", func(e *Exception) { e.GrantedBy = "" }, "granted_by", ErrMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := base
			tt.edit(&e)
			err := e.Validate(now)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var fe *FieldError
			if !errors.Is(err, tt.err) || !errors.As(err, &fe) || fe.Field != tt.field {
				t.Errorf("Validate: err = %v, want %v on %s", err, tt.err, tt.field)
			}
		})
	}
}

func TestSetupMinimumRequired(t *testing.T) {
	for _, tc := range []struct {
		mode  Mode
		setup string
		want  bool
	}{
		{ModeManual, "", true}, {ModeManual, SetupMinimumOff, false}, {ModeManual, SetupMinimumRequired, true},
		{ModeAutomatic, "", false}, {ModeAutomatic, SetupMinimumRequired, true},
		{ModeUnmanaged, SetupMinimumRequired, false},
	} {
		p := Policy{Mode: tc.mode, SetupMinimum: tc.setup}
		if have := p.SetupMinimumRequired(); have != tc.want {
			t.Errorf("%s/%q: have %v, want %v", tc.mode, tc.setup, have, tc.want)
		}
	}
}
