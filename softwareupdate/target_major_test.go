package softwareupdate

import (
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
