package softwareupdate

import (
	"testing"
	"time"
)

func TestResolveWallTime(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip(err)
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip(err)
	}
	for _, tc := range []struct {
		name         string
		y            int
		m            time.Month
		d, hour, min int
		loc          *time.Location
		want         string // UTC
		wantKind     WallTimeKind
	}{
		{"ordinary", 2026, time.June, 1, 17, 0, berlin, "2026-06-01 15:00", WallTimeUnique},
		{"spring forward gap NY", 2026, time.March, 8, 2, 30, ny, "2026-03-08 07:30", WallTimeSkipped},
		{"fall back NY first occurrence", 2026, time.November, 1, 1, 30, ny, "2026-11-01 05:30", WallTimeRepeated},
		{"spring forward gap Berlin", 2026, time.March, 29, 2, 30, berlin, "2026-03-29 01:30", WallTimeSkipped},
		{"fall back Berlin", 2026, time.October, 25, 2, 30, berlin, "2026-10-25 00:30", WallTimeRepeated},
		{"UTC", 2026, time.March, 8, 2, 30, time.UTC, "2026-03-08 02:30", WallTimeUnique},
	} {
		t.Run(tc.name, func(t *testing.T) {
			have, kind := ResolveWallTime(tc.y, tc.m, tc.d, tc.hour, tc.min, tc.loc)
			if got := have.UTC().Format("2006-01-02 15:04"); got != tc.want || kind != tc.wantKind {
				t.Errorf("ResolveWallTime = %s, %v; want %s, %v", got, kind, tc.want, tc.wantKind)
			}
		})
	}
}
