package softwareupdate

import (
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
)

// TestSupportFromTheWholeMajor is issue 20 item 8: SOFA lists 52 boards for
// macOS 15.4 and omits the M1 and M2 MacBook Airs (J313AP, J413AP) that
// later 15.x releases list. A Mac already on macOS 15 is supported by 15.4.
func TestSupportFromTheWholeMajor(t *testing.T) {
	cat := catalog.Default()
	rel, ok := cat.Lookup(v("15.4"))
	if !ok {
		t.Fatal("built-in catalog lacks macOS 15.4")
	}
	for _, b := range []string{"J313AP", "J413AP"} {
		if rel.Supports(b) {
			t.Fatalf("fixture changed: macOS 15.4 lists %s; this test needs a release that omits it", b)
		}
	}
	now := time.Date(2025, 4, 20, 12, 0, 0, 0, time.UTC)
	manual := Policy{Mode: ModeManual, MinimumVersion: "15.4", Date: "2025-05-01", TimeOfDay: "17:00", TimeZone: "UTC"}
	auto := Policy{Mode: ModeAutomatic, DelayDays: 7, TimeOfDay: "17:00", TimeZone: "UTC"}
	for _, tc := range []struct {
		name   string
		policy Policy
		dev    DeviceFacts
		want   wantTarget
	}{
		{"manual, board J313AP", manual, DeviceFacts{OSVersion: v("15.3.1"), BoardID: "J313AP"}, wantTarget{status: StatusRequired, version: "15.4"}},
		{"manual, board J413AP", manual, DeviceFacts{OSVersion: v("15.3.1"), BoardID: "J413AP"}, wantTarget{status: StatusRequired, version: "15.4"}},
		{"manual, model MacBookAir10,1", manual, DeviceFacts{OSVersion: v("15.3.1"), Model: "MacBookAir10,1"}, wantTarget{status: StatusRequired, version: "15.4"}},
		// On an older major the release's own list still decides.
		{"manual major upgrade, board J313AP", Policy{Mode: ModeManual, MinimumVersion: "15.4", Date: "2025-05-01", TimeOfDay: "17:00",
			TimeZone: "UTC", AllowMajorUpgrades: true}, DeviceFacts{OSVersion: v("14.7"), BoardID: "J313AP"}, wantTarget{status: StatusUnsupported, version: "15.4"}},
		// A board no macOS 15 release lists stays unsupported.
		{"manual, unknown board", manual, DeviceFacts{OSVersion: v("15.3.1"), BoardID: "J999AP"}, wantTarget{status: StatusUnsupported, version: "15.4"}},
		// Automatic: 15.4 (posted 2025-03-31) is due by 2025-04-20; before the
		// fix it was skipped as unsupported and an older release became the target.
		{"automatic, board J313AP", auto, DeviceFacts{OSVersion: v("15.3.1"), BoardID: "J313AP"}, wantTarget{status: StatusRequired, version: "15.4", posted: "2025-03-11"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkTarget(t, ResolveTarget(tc.policy, tc.dev, cat, now), tc.want)
		})
	}
}

// TestExpiredNeverTarget: a release whose gdmf expiration date has passed
// is never chosen as a target, but a Mac that missed it stays late from
// its posting date.
func TestExpiredNeverTarget(t *testing.T) {
	rel := func(ver, posted, expires string) catalog.Release {
		r := catalog.Release{Version: v(ver), PostingDate: day(posted), SupportedDevices: []string{"J413AP"}}
		if expires != "" {
			r.ExpirationDate = day(expires)
		}
		return r
	}
	cat, err := catalog.New(
		rel("15.3", "2025-01-01", ""),
		rel("15.4", "2025-02-01", ""),
		rel("15.5", "2025-03-01", "2025-03-18"),
		rel("15.6", "2025-03-20", ""),
	)
	if err != nil {
		t.Fatal(err)
	}
	auto := Policy{Mode: ModeAutomatic, DelayDays: 14, TimeOfDay: "12:00", TimeZone: "UTC"}
	dev := DeviceFacts{OSVersion: v("15.3"), BoardID: "J413AP"}
	for _, tc := range []struct {
		name string
		now  time.Time
		want wantTarget
	}{
		// 15.5 is due and not yet expired: it is the target.
		{"before expiry", utc(2025, 3, 16, 13, 0), wantTarget{status: StatusRequired, version: "15.5", posted: "2025-02-01"}},
		// 15.5 expired: the newest unexpired due release (15.4) is the target.
		{"after expiry", utc(2025, 3, 19, 13, 0), wantTarget{status: StatusRequired, version: "15.4", posted: "2025-02-01"}},
		// 15.6 due later.
		{"next release due", utc(2025, 4, 10, 13, 0), wantTarget{status: StatusRequired, version: "15.6", posted: "2025-02-01"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkTarget(t, ResolveTarget(auto, dev, cat, tc.now), tc.want)
		})
	}
	// Only expired releases newer than the Mac: nothing to enforce, and the
	// reason points at the catalog.
	old, err := catalog.New(rel("15.3", "2025-01-01", ""), rel("15.4", "2025-02-01", "2025-03-15"))
	if err != nil {
		t.Fatal(err)
	}
	got := ResolveTarget(auto, dev, old, utc(2025, 4, 1, 13, 0))
	if got.Status != StatusCompliant || !strings.Contains(got.Reason, "expired") {
		t.Errorf("only expired releases: %s (%s), want compliant because they expired", got.Status, got.Reason)
	}
	// A stale catalog (its data confirmed before 15.5 expired) keeps 15.5.
	stale := cat.Clone()
	stale.SetAsOf(utc(2025, 3, 17, 0, 0))
	checkTarget(t, ResolveTarget(auto, dev, stale, utc(2025, 3, 19, 13, 0)), wantTarget{status: StatusRequired, version: "15.5", posted: "2025-02-01"})
	// Manual, majors off, older major: the latest unexpired release of the Mac's major.
	manual := Policy{Mode: ModeManual, MinimumVersion: "26.0", Date: "2025-09-01", TimeOfDay: "17:00", TimeZone: "UTC"}
	got = ResolveTarget(manual, dev, old, utc(2025, 4, 1, 13, 0))
	if got.Status == StatusRequired || got.Status == StatusUnsupported {
		t.Errorf("manual within the major, only an expired newer release: %s %s (%s)", got.Status, got.Version, got.Reason)
	}
}
