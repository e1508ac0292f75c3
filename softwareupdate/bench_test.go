package softwareupdate

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
)

type fleetDevice struct {
	policy    int
	facts     DeviceFacts
	firstSeen time.Time
	ex        *Exception
}

// fleet builds n Macs with a realistic mix: mostly current Apple silicon,
// some behind, some on older majors, Intel Macs that cannot run macOS 26,
// Macs that reported only a model or nothing at all, a few exemptions;
// spread over four policies.
func fleet(tb testing.TB, n int, cat *catalog.Catalog, now time.Time) ([]Policy, []fleetDevice) {
	tb.Helper()
	policies := []Policy{
		{Mode: ModeAutomatic, DelayDays: 14, TimeOfDay: "09:00", TimeZone: "America/New_York"},
		{Mode: ModeAutomatic, DelayDays: 7, TimeOfDay: "10:00", TimeZone: "Europe/Berlin", AllowMajorUpgrades: true, RingOffsetDays: 3},
		{Mode: ModeManual, MinimumVersion: "26.6.2", Date: "2026-09-01", TimeOfDay: "17:00", TimeZone: "America/Los_Angeles"},
		{Mode: ModeUnmanaged},
	}
	latest, _ := cat.Latest("")
	intel, _ := cat.Lookup(catalog.MustParseVersion("15.7.9"))
	var intelOnly []string
	for _, b := range intel.SupportedDevices {
		if !latest.Supports(b) {
			intelOnly = append(intelOnly, b)
		}
	}
	var versions []catalog.Version
	for _, r := range cat.Releases() {
		if r.Version.Major() >= 14 {
			versions = append(versions, r.Version)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	devs := make([]fleetDevice, n)
	for i := range devs {
		d := &devs[i]
		d.policy = []int{0, 0, 0, 0, 0, 1, 1, 2, 2, 3}[rng.IntN(10)]
		d.firstSeen = now.Add(-time.Duration(rng.IntN(20*24)) * time.Hour)
		switch r := rng.IntN(100); {
		case r < 55: // current or nearly
			d.facts = DeviceFacts{OSVersion: versions[len(versions)-1-rng.IntN(3)], BoardID: latest.SupportedDevices[rng.IntN(len(latest.SupportedDevices))]}
		case r < 85: // anything since macOS 14
			d.facts = DeviceFacts{OSVersion: versions[rng.IntN(len(versions))], BoardID: latest.SupportedDevices[rng.IntN(len(latest.SupportedDevices))]}
		case r < 93: // Intel, stuck on 15
			d.facts = DeviceFacts{OSVersion: catalog.NewVersion(15, 7, 5+rng.IntN(5)), BoardID: intelOnly[rng.IntN(len(intelOnly))]}
		case r < 97: // model only
			d.facts = DeviceFacts{OSVersion: versions[rng.IntN(len(versions))], Model: "Mac14,2"}
		default: // OS version never reported
			d.facts = DeviceFacts{BoardID: "J413AP"}
		}
		if rng.IntN(100) == 0 {
			d.ex = &Exception{Exempt: true, Expires: now.Add(72 * time.Hour), Reason: "bench", GrantedBy: "bench"}
		}
	}
	return policies, devs
}

func evaluate(now time.Time, p *Policy, d *fleetDevice, cat *catalog.Catalog) Decision {
	tgt := ResolveTarget(*p, d.facts, cat, now)
	dl := PersonalDeadline(*p, tgt, d.firstSeen, d.ex, nil)
	return Decide(now, DeviceState{Target: tgt, Exception: d.ex}, dl)
}

// BenchmarkFleetPass evaluates ResolveTarget + PersonalDeadline + Decide
// for 100,000 Macs per iteration (a full scheduler pass without storage).
func BenchmarkFleetPass(b *testing.B) {
	const n = 100_000
	cat := catalog.Default()
	now := utc(2026, 8, 25, 14, 0)
	policies, devs := fleet(b, n, cat, now)
	counts := map[Phase]int{}
	for i := range devs {
		counts[evaluate(now, &policies[devs[i].policy], &devs[i], cat).Phase]++
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for i := range devs {
			evaluate(now, &policies[devs[i].policy], &devs[i], cat)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/device")
	for _, ph := range []Phase{PhaseCompliant, PhasePending, PhaseNotify, PhaseCountdown, PhaseEnforce, PhaseUnsupported, PhaseExempt, PhaseUnknown, PhaseUnmanaged, PhaseFailed} {
		b.ReportMetric(float64(counts[ph]), string(ph))
	}
}

func BenchmarkResolveTarget(b *testing.B) {
	cat := catalog.Default()
	now := utc(2026, 8, 25, 14, 0)
	p := Policy{Mode: ModeAutomatic, DelayDays: 7, TimeOfDay: "10:00", TimeZone: "Europe/Berlin", AllowMajorUpgrades: true}
	dev := DeviceFacts{OSVersion: catalog.MustParseVersion("15.6"), BoardID: "J314cAP"}
	b.ReportAllocs()
	for b.Loop() {
		if ResolveTarget(p, dev, cat, now).Status != StatusRequired {
			b.Fatal("not required")
		}
	}
}

func BenchmarkPersonalDeadline(b *testing.B) {
	p := Policy{Mode: ModeAutomatic, DelayDays: 7, TimeOfDay: "10:00", TimeZone: "Europe/Berlin", RingOffsetDays: 3}
	tgt := Target{Status: StatusRequired, PostingDate: day("2026-08-17")}
	first := utc(2026, 8, 20, 9, 0)
	b.ReportAllocs()
	for b.Loop() {
		if PersonalDeadline(p, tgt, first, nil, nil).IsZero() {
			b.Fatal("no deadline")
		}
	}
}

func BenchmarkDecide(b *testing.B) {
	D := utc(2026, 9, 1, 21, 0)
	st := DeviceState{Target: Target{Status: StatusRequired}}
	now := D.Add(-48 * time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		if Decide(now, st, D).Phase != PhaseNotify {
			b.Fatal("wrong phase")
		}
	}
}
