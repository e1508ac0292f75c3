package webhook

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// TestRingEventIDsNameTransitions: evaluating the same gates at another
// instant gives the same event IDs; a ring whose gate's maximum wait
// passed gets a new ring.held ID; a ring started more than
// RingStartedWithin ago is not announced, one started within it is.
func TestRingEventIDsNameTransitions(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	plan := scheduler.RingPlan{ID: "macos", Groups: []string{"pilot", "early", "broad"},
		States: []scheduler.RingState{{Started: t0}, {}, {}}}
	tally := scheduler.RingTally{Eligible: 10, Compliant: 3}
	held := func(needsPromotion bool) map[string][]scheduler.RingStatus {
		return map[string][]scheduler.RingStatus{"macos": {
			{Name: "pilot", MayNotify: true, Tally: tally, Gate: scheduler.GateVerdict{NeedsPromotion: needsPromotion, Reason: "3 of 10 Macs compliant (< 90 %)"}},
			{Name: "early", HeldBy: "pilot", Reason: "3 of 10 Macs compliant (< 90 %)"},
			{Name: "broad", HeldBy: "pilot", Reason: "3 of 10 Macs compliant (< 90 %)"},
		}}
	}
	ids := func(events []Event) []string {
		var out []string
		for _, e := range events {
			out = append(out, e.Type+" "+e.ID)
		}
		return out
	}
	first, err := RingEvents(t0, []scheduler.RingPlan{plan}, held(false))
	if err != nil || len(first) != 2 || first[0].Type != TypeRingHeld || first[1].Type != TypeRingHeld {
		t.Fatalf("held rings: %v, %v; want ring.held for early and broad", ids(first), err)
	}
	var d RingData
	if err := json.Unmarshal(first[1].Data, &d); err != nil || d.Group != "broad" || d.GateGroup != "pilot" || d.Tally != tally {
		t.Fatalf("broad's data %+v, %v", d, err)
	}
	again, _ := RingEvents(t0.Add(5*time.Hour), []scheduler.RingPlan{plan}, held(false))
	if first[0].ID != again[0].ID || first[1].ID != again[1].ID {
		t.Fatalf("re-evaluation renamed the events: %v then %v", ids(first), ids(again))
	}
	waited, _ := RingEvents(t0.Add(200*time.Hour), []scheduler.RingPlan{plan}, held(true))
	if waited[0].ID == first[0].ID || json.Unmarshal(waited[0].Data, &d) != nil || !d.NeedsPromotion {
		t.Fatalf("after the maximum wait: %v (%+v), want a new ring.held with needs_promotion", ids(waited), d)
	}

	// early started by promotion; broad is held by early now.
	plan.States[0].Promoted = &scheduler.Promotion{At: t0.Add(time.Hour), Actor: "alice"}
	plan.States[1].Started = t0.Add(time.Hour)
	started := map[string][]scheduler.RingStatus{"macos": {
		{Name: "pilot", MayNotify: true, Tally: tally, Gate: scheduler.GateVerdict{Open: true, Reason: "promoted by hand"}},
		{Name: "early", MayNotify: true, Gate: scheduler.GateVerdict{Reason: "0 of 5 Macs compliant (< 90 %)"}},
		{Name: "broad", HeldBy: "early", Reason: "0 of 5 Macs compliant (< 90 %)"},
	}}
	got, _ := RingEvents(t0.Add(2*time.Hour), []scheduler.RingPlan{plan}, started)
	if len(got) != 2 || got[0].Type != TypeRingStarted || got[1].Type != TypeRingHeld || got[1].ID == first[1].ID {
		t.Fatalf("after the promotion: %v; want ring.started for early and a new ring.held for broad", ids(got))
	}
	if err := json.Unmarshal(got[0].Data, &d); err != nil || d.Cause != "promoted" || d.PromotedBy != "alice" || !d.Started.Equal(t0.Add(time.Hour)) {
		t.Fatalf("ring.started data %+v, %v", d, err)
	}
	late, _ := RingEvents(t0.Add(time.Hour+RingStartedWithin+time.Minute), []scheduler.RingPlan{plan}, started)
	if len(late) != 1 || late[0].Type != TypeRingHeld {
		t.Fatalf("a day after early started: %v; want only broad's ring.held", ids(late))
	}
}
