package softwareupdate

import (
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
)

type wantTarget struct {
	status     TargetStatus
	version    string // "" for none
	posted     string // Target.PostingDate, "" for none
	major      bool
	unverified bool
}

func checkTarget(t *testing.T, got Target, want wantTarget) {
	t.Helper()
	gotPosted := ""
	if !got.PostingDate.IsZero() {
		gotPosted = got.PostingDate.Format(time.DateOnly)
	}
	if got.Status != want.status || got.Version.String() != want.version || gotPosted != want.posted ||
		got.MajorUpgrade != want.major || got.HardwareUnverified != want.unverified {
		t.Errorf("got %s %q posted %q major %v unverified %v (%s); want %s %q posted %q major %v unverified %v",
			got.Status, got.Version, gotPosted, got.MajorUpgrade, got.HardwareUnverified, got.Reason,
			want.status, want.version, want.posted, want.major, want.unverified)
	}
	if got.Reason == "" {
		t.Error("empty reason")
	}
	if got.Status == StatusRequired && !got.Release.Version.IsZero() && got.Release.Version != got.Version {
		t.Errorf("release %s does not match target %s", got.Release.Version, got.Version)
	}
}

func TestResolveTargetManual(t *testing.T) {
	cat := testCatalog(t)
	now := utc(2026, 8, 22, 12, 0)
	p := Policy{Mode: ModeManual, MinimumVersion: "26.6.1", Date: "2026-09-01", TimeOfDay: "17:00", TimeZone: "America/New_York"}
	major := p
	major.AllowMajorUpgrades = true
	unknown := p
	unknown.MinimumVersion, unknown.AllowUnknownVersion = "26.6.5", true
	tests := []struct {
		name   string
		policy Policy
		dev    DeviceFacts
		want   wantTarget
	}{
		{"unmanaged", Policy{Mode: ModeUnmanaged}, DeviceFacts{OSVersion: v("15.0"), BoardID: boardNew}, wantTarget{status: StatusNotManaged}},
		{"unknown OS version", p, DeviceFacts{BoardID: boardNew}, wantTarget{status: StatusUnknownOS}},
		{"above target", p, DeviceFacts{OSVersion: v("26.6.2"), BoardID: boardNew}, wantTarget{status: StatusCompliant, version: "26.6.1"}},
		{"at target", p, DeviceFacts{OSVersion: v("26.6.1"), BoardID: boardNew}, wantTarget{status: StatusCompliant, version: "26.6.1"}},
		{"below target", p, DeviceFacts{OSVersion: v("26.5.2"), BoardID: boardNew}, wantTarget{status: StatusRequired, version: "26.6.1"}},
		{"older major, majors off: latest minor", p, DeviceFacts{OSVersion: v("15.7.8"), BoardID: boardNew}, wantTarget{status: StatusRequired, version: "15.7.9"}},
		{"older major, majors off, at latest minor", p, DeviceFacts{OSVersion: v("15.7.9"), BoardID: boardOld}, wantTarget{status: StatusCompliant, version: "15.7.9"}},
		{"older major, majors on", major, DeviceFacts{OSVersion: v("15.7.8"), BoardID: boardNew}, wantTarget{status: StatusRequired, version: "26.6.1", major: true}},
		{"older major, majors on, old hardware", major, DeviceFacts{OSVersion: v("15.7.9"), BoardID: boardOld}, wantTarget{status: StatusUnsupported, version: "26.6.1"}},
		{"major not in catalog, majors off", p, DeviceFacts{OSVersion: v("13.7.8"), BoardID: boardNew}, wantTarget{status: StatusCompliant}},
		{"no board, no model", p, DeviceFacts{OSVersion: v("26.5.2")}, wantTarget{status: StatusRequired, version: "26.6.1", unverified: true}},
		{"unknown version allowed", unknown, DeviceFacts{OSVersion: v("26.6.2"), BoardID: boardNew}, wantTarget{status: StatusRequired, version: "26.6.5"}},
		{"malformed version", Policy{Mode: ModeManual, MinimumVersion: "x"}, DeviceFacts{OSVersion: v("26.6.2")}, wantTarget{status: StatusInvalidPolicy, unverified: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkTarget(t, ResolveTarget(tt.policy, tt.dev, cat, now), tt.want)
		})
	}
}

func TestResolveTargetAutomatic(t *testing.T) {
	cat := testCatalog(t)
	// 14 days after posting at 09:00 New York time. At 08:00 EDT on
	// 2026-08-22 the newest required posting day is 2026-08-07: 26.6.1 and
	// 15.7.9 (posted 08-06) are required, 26.6.2 (posted 08-17) is not yet.
	p := Policy{Mode: ModeAutomatic, DelayDays: 14, TimeOfDay: "09:00", TimeZone: "America/New_York"}
	now := at(t, "America/New_York", 2026, 8, 22, 8, 0)
	major := p
	major.AllowMajorUpgrades = true
	tests := []struct {
		name   string
		policy Policy
		now    time.Time
		dev    DeviceFacts
		want   wantTarget
	}{
		{"newest required release", p, now, DeviceFacts{OSVersion: v("26.6"), BoardID: boardNew},
			wantTarget{status: StatusRequired, version: "26.6.1", posted: "2026-08-06"}},
		// The deadline counts from the oldest missing release (26.6, posted 07-27).
		{"several missing", p, now, DeviceFacts{OSVersion: v("26.5.2"), BoardID: boardNew},
			wantTarget{status: StatusRequired, version: "26.6.1", posted: "2026-07-27"}},
		{"next release not required yet", p, now, DeviceFacts{OSVersion: v("26.6.1"), BoardID: boardNew},
			wantTarget{status: StatusRequired, version: "26.6.2", posted: "2026-08-17"}},
		// The supplemental 26.6.2 (a) is never a target.
		{"newest, supplemental ignored", p, now, DeviceFacts{OSVersion: v("26.6.2"), BoardID: boardNew},
			wantTarget{status: StatusCompliant}},
		{"above every release", p, now, DeviceFacts{OSVersion: v("27.0"), BoardID: boardNew},
			wantTarget{status: StatusCompliant}},
		{"older major, majors off", p, now, DeviceFacts{OSVersion: v("15.7.8"), BoardID: boardOld},
			wantTarget{status: StatusRequired, version: "15.7.9", posted: "2026-08-06"}},
		{"older major, majors on", major, now, DeviceFacts{OSVersion: v("15.7.8"), BoardID: boardNew},
			wantTarget{status: StatusRequired, version: "26.6.1", posted: "2026-06-29", major: true}},
		// An old Mac with major upgrades on still gets its own major's update.
		{"older major, majors on, old hardware", major, now, DeviceFacts{OSVersion: v("15.7.8"), BoardID: boardOld},
			wantTarget{status: StatusRequired, version: "15.7.9", posted: "2026-08-06"}},
		{"old hardware at its newest", major, now, DeviceFacts{OSVersion: v("15.7.9"), BoardID: boardOld},
			wantTarget{status: StatusUnsupported, version: "26.6.2"}},
		{"old hardware at its newest, majors off", p, now, DeviceFacts{OSVersion: v("15.7.9"), BoardID: boardOld},
			wantTarget{status: StatusCompliant}},
		{"unknown board", p, now, DeviceFacts{OSVersion: v("26.6"), BoardID: "J999AP"},
			wantTarget{status: StatusUnsupported, version: "26.6.2"}},
		// 26.6.2 becomes required at 09:00 EDT on 2026-08-31.
		{"one minute before a release becomes required", p, at(t, "America/New_York", 2026, 8, 31, 8, 59), DeviceFacts{OSVersion: v("26.6"), BoardID: boardNew},
			wantTarget{status: StatusRequired, version: "26.6.1", posted: "2026-08-06"}},
		{"when it becomes required", p, at(t, "America/New_York", 2026, 8, 31, 9, 0), DeviceFacts{OSVersion: v("26.6"), BoardID: boardNew},
			wantTarget{status: StatusRequired, version: "26.6.2", posted: "2026-08-06"}},
		{"bad zone", Policy{Mode: ModeAutomatic, DelayDays: 3, TimeOfDay: "09:00", TimeZone: "Nowhere"}, now, DeviceFacts{OSVersion: v("26.6"), BoardID: boardNew},
			wantTarget{status: StatusInvalidPolicy}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkTarget(t, ResolveTarget(tt.policy, tt.dev, cat, tt.now), tt.want)
		})
	}
}

// TestResolveTargetDefaultCatalog uses the built-in snapshot: real board
// IDs, and the model fallback for a Mac that reported no board ID.
func TestResolveTargetDefaultCatalog(t *testing.T) {
	cat := catalog.Default()
	now := utc(2026, 8, 22, 12, 0)
	p := Policy{Mode: ModeAutomatic, DelayDays: 7, TimeOfDay: "10:00", TimeZone: "Europe/Berlin", AllowMajorUpgrades: true}
	tests := []struct {
		name string
		dev  DeviceFacts
		want wantTarget
	}{
		// 26.6.2 (posted 08-17) is required from 08-24; 26.6.1 (08-06) is.
		// The deadline counts from 26.5.1, posted 06-01.
		{"M2 MacBook Air on 26.5", DeviceFacts{OSVersion: v("26.5"), BoardID: "J413AP"},
			wantTarget{status: StatusRequired, version: "26.6.1", posted: "2026-06-01"}},
		{"model fallback", DeviceFacts{OSVersion: v("26.5"), Model: "Mac14,2"},
			wantTarget{status: StatusRequired, version: "26.6.1", posted: "2026-06-01"}},
		// MacBookPro15,2 has two board IDs in SOFA; neither runs Tahoe.
		{"Intel model fallback", DeviceFacts{OSVersion: v("15.7.9"), Model: "MacBookPro15,2"},
			wantTarget{status: StatusUnsupported, version: "26.6.2"}},
		// A model newer than the catalog: assume it can update, and say so.
		{"unknown model", DeviceFacts{OSVersion: v("26.5"), Model: "Mac99,9"},
			wantTarget{status: StatusRequired, version: "26.6.1", posted: "2026-06-01", unverified: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ResolveTarget(p, tt.dev, cat, now)
			checkTarget(t, got, tt.want)
			if got.Status == StatusUnsupported && !strings.Contains(got.Reason, "not supported") {
				t.Errorf("reason %q", got.Reason)
			}
		})
	}
}
