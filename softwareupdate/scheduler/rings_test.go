package scheduler

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate"
)

func ip(v int) *int { return &v }

func TestRingGateValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		have RingGate
		ok   bool
	}{
		{"defaults", RingGate{}, true},
		{"zero failures allowed", RingGate{MaxFailedPercent: ip(0)}, true},
		{"compliant over 100", RingGate{MinCompliantPercent: ip(101)}, false},
		{"negative failed", RingGate{MaxFailedPercent: ip(-1)}, false},
		{"wait zero", RingGate{MaxWaitHours: ip(0)}, false},
		{"wait over 30 days", RingGate{MaxWaitHours: ip(30*24 + 1)}, false},
		{"wait 30 days", RingGate{MaxWaitHours: ip(30 * 24)}, true},
		{"wait overflowing a Duration into range", RingGate{MaxWaitHours: ip(5124097)}, false},
	} {
		err := tc.have.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v, want ok %v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidGate) {
			t.Errorf("%s: error %v is not ErrInvalidGate", tc.name, err)
		}
	}
}

func TestRingGateEvaluate(t *testing.T) {
	start := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		gate     RingGate
		tally    RingTally
		at       time.Duration
		promoted bool
		want     GateVerdict
		reason   string
	}{
		{"opens at exactly 90 %", RingGate{}, RingTally{Eligible: 10, Compliant: 9}, time.Hour, false, GateVerdict{Open: true}, "9 of 10 Macs compliant"},
		{"held below 90 %", RingGate{}, RingTally{Eligible: 10, Compliant: 8}, time.Hour, false, GateVerdict{}, "8 of 10 Macs compliant (< 90 %)"},
		{"failures hold despite compliance", RingGate{}, RingTally{Eligible: 100, Compliant: 97, Failed: 3}, time.Hour, false, GateVerdict{}, "3 of 100 Macs failed (> 2 %)"},
		{"2 % failed still opens", RingGate{}, RingTally{Eligible: 100, Compliant: 95, Failed: 2}, time.Hour, false, GateVerdict{Open: true}, "2 failed"},
		{"max wait needs promotion", RingGate{}, RingTally{Eligible: 10, Compliant: 5}, DefaultGateMaxWait, false, GateVerdict{NeedsPromotion: true}, "promote by hand"},
		{"custom wait not yet", RingGate{MaxWaitHours: ip(48)}, RingTally{Eligible: 10, Compliant: 5}, 47 * time.Hour, false, GateVerdict{}, "5 of 10"},
		{"promoted opens", RingGate{}, RingTally{Eligible: 10, Failed: 10}, DefaultGateMaxWait, true, GateVerdict{Open: true}, "promoted by hand"},
		{"empty ring opens", RingGate{}, RingTally{}, 0, false, GateVerdict{Open: true}, "no eligible Macs"},
		{"custom thresholds", RingGate{MinCompliantPercent: ip(50), MaxFailedPercent: ip(0)}, RingTally{Eligible: 4, Compliant: 2}, time.Hour, false, GateVerdict{Open: true}, "2 of 4"},
		{"zero failures tolerated", RingGate{MaxFailedPercent: ip(0)}, RingTally{Eligible: 4, Compliant: 3, Failed: 1}, time.Hour, false, GateVerdict{}, "1 of 4 Macs failed (> 0 %)"},
	} {
		have := tc.gate.Evaluate(tc.tally, start, start.Add(tc.at), tc.promoted)
		if have.Open != tc.want.Open || have.NeedsPromotion != tc.want.NeedsPromotion {
			t.Errorf("%s: Evaluate = %+v, want open %v needs promotion %v", tc.name, have, tc.want.Open, tc.want.NeedsPromotion)
		}
		if !strings.Contains(have.Reason, tc.reason) {
			t.Errorf("%s: reason %q, want it to contain %q", tc.name, have.Reason, tc.reason)
		}
	}
}

func TestGateRingsHoldsLaterRings(t *testing.T) {
	start := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	rings := []Ring{
		{Name: "pilot", Tally: RingTally{Eligible: 10, Compliant: 10}, Started: start},
		{Name: "early", Tally: RingTally{Eligible: 50, Compliant: 40, Failed: 5}, Started: start.Add(24 * time.Hour)},
		{Name: "broad", Tally: RingTally{Eligible: 500}},
		{Name: "late", Tally: RingTally{Eligible: 100}},
	}
	now := start.Add(48 * time.Hour)
	have := GateRings(rings, now)
	want := []struct {
		may    bool
		heldBy string
	}{{true, ""}, {true, ""}, {false, "early"}, {false, "early"}}
	for i, w := range want {
		if have[i].MayNotify != w.may || have[i].HeldBy != w.heldBy {
			t.Errorf("ring %s: %+v, want may notify %v held by %q", rings[i].Name, have[i], w.may, w.heldBy)
		}
	}
	if !strings.Contains(have[3].Reason, "5 of 50 Macs failed") {
		t.Errorf("late's reason %q does not say why early holds it", have[3].Reason)
	}

	// The failures are fixed: early's gate opens and broad may notify;
	// broad has not started, so its empty-started gate waits without a
	// max-wait clock and holds late.
	rings[1].Tally = RingTally{Eligible: 50, Compliant: 48}
	have = GateRings(rings, now)
	if !have[2].MayNotify || have[3].MayNotify || have[3].HeldBy != "broad" || have[2].Gate.NeedsPromotion {
		t.Errorf("after early recovered: broad %+v late %+v", have[2], have[3])
	}

	// Max wait passed on early: still held until promoted by hand.
	rings[1].Tally = RingTally{Eligible: 50, Compliant: 20}
	have = GateRings(rings, rings[1].Started.Add(DefaultGateMaxWait))
	if have[2].MayNotify || !have[1].Gate.NeedsPromotion {
		t.Errorf("max wait: early %+v broad %+v, want broad held and promotion needed", have[1], have[2])
	}
	rings[1].Promoted = true
	have = GateRings(rings, rings[1].Started.Add(DefaultGateMaxWait))
	if !have[2].MayNotify {
		t.Errorf("promoted: broad %+v, want it notified", have[2])
	}
}

func TestRingTallyAdd(t *testing.T) {
	var have RingTally
	for _, p := range []softwareupdate.Phase{
		softwareupdate.PhaseCompliant, softwareupdate.PhaseCompliant, softwareupdate.PhaseFailed,
		softwareupdate.PhaseNotify, softwareupdate.PhasePaused, softwareupdate.PhasePending,
		softwareupdate.PhaseExempt, softwareupdate.PhaseUnsupported, softwareupdate.PhaseIneligible,
		softwareupdate.PhaseUnknown, softwareupdate.PhaseUnmanaged, PhaseUnevaluated,
	} {
		have.Add(p)
	}
	if want := (RingTally{Eligible: 6, Compliant: 2, Failed: 1}); have != want {
		t.Errorf("tally = %+v, want %+v", have, want)
	}
}
