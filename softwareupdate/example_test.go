package softwareupdate_test

import (
	"fmt"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
)

// A scheduler pass for one Mac: resolve its target, compute its personal
// deadline, decide its phase.
func Example() {
	cat := catalog.Default()
	now := time.Date(2026, 8, 22, 12, 0, 0, 0, time.UTC)
	policy := softwareupdate.Policy{
		Mode: softwareupdate.ModeAutomatic, DelayDays: 14,
		TimeOfDay: "09:00", TimeZone: "America/New_York",
	}
	if err := policy.Validate(now, cat); err != nil {
		fmt.Println(err)
		return
	}
	mac := softwareupdate.DeviceFacts{OSVersion: catalog.MustParseVersion("26.6"), BoardID: "J413AP"}
	// 26.6.1 became required at 09:00 EDT on 08-20 (posted 08-06 + 14 days);
	// Sundial saw the Mac behind five minutes later. Five days of notice
	// from then end at 09:05 on 08-25, rounded up to the policy's 09:00.
	firstSeenNonCompliant := time.Date(2026, 8, 20, 13, 5, 0, 0, time.UTC)

	target := softwareupdate.ResolveTarget(policy, mac, cat, now)
	deadline := softwareupdate.PersonalDeadline(policy, target, firstSeenNonCompliant, nil, nil)
	d := softwareupdate.Decide(now, softwareupdate.DeviceState{Target: target}, deadline)

	ny, _ := time.LoadLocation("America/New_York")
	fmt.Println(target.Status, target.Version, target.Build)
	fmt.Println("deadline", deadline.In(ny).Format(time.DateTime+" MST"))
	fmt.Println(d.Phase, "until", d.NextChange.In(ny).Format(time.DateTime+" MST"))
	// Output:
	// required 26.6.1 25G76
	// deadline 2026-08-26 09:00:00 EDT
	// notify until 2026-08-26 09:00:00 EDT
}
