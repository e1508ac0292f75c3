package softwareupdate

import (
	"testing"
	"time"
	_ "time/tzdata"

	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
)

func v(s string) catalog.Version { return catalog.MustParseVersion(s) }

func day(s string) time.Time {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return d
}

func zone(t testing.TB, name string) *time.Location {
	t.Helper()
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// at returns the instant of a wall time in a zone (never in a DST gap here).
func at(t testing.TB, zoneName string, y int, m time.Month, d, hh, mm int) time.Time {
	t.Helper()
	return time.Date(y, m, d, hh, mm, 0, 0, zone(t, zoneName))
}

func utc(y int, m time.Month, d, hh, mm int) time.Time {
	return time.Date(y, m, d, hh, mm, 0, 0, time.UTC)
}

// Board IDs of the test catalog: an Apple-silicon MacBook Air (runs
// everything) and a 2018 MacBook Pro (cannot run macOS 26).
const (
	boardNew = "J413AP"
	boardOld = "J132AP"
)

// testCatalog is a small, controlled catalog modeled on August 2026.
func testCatalog(t testing.TB) *catalog.Catalog {
	t.Helper()
	both := []string{boardNew, boardOld}
	rel := func(ver, posted string, devices []string) catalog.Release {
		return catalog.Release{Version: v(ver), Build: "B" + ver[:2], PostingDate: day(posted), SupportedDevices: devices}
	}
	c, err := catalog.New(
		rel("14.8.8", "2026-07-27", both),
		rel("14.8.9", "2026-08-06", both),
		rel("15.7.8", "2026-07-27", both),
		rel("15.7.9", "2026-08-06", both),
		rel("26.5.2", "2026-06-29", []string{boardNew}),
		rel("26.6", "2026-07-27", []string{boardNew}),
		rel("26.6.1", "2026-08-06", []string{boardNew}),
		rel("26.6.2", "2026-08-17", []string{boardNew}),
		catalog.Release{Version: v("26.6.2"), VersionExtra: "(a)", Supplemental: true, PostingDate: day("2026-08-20"), SupportedDevices: []string{boardNew}},
	)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
