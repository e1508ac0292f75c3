package scheduler_test

import (
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/internal/webhook"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// hookLog drains the unit's webhook outbox, acknowledging every delivery
// as a receiver would, and keeps what it saw.
type hookLog struct {
	u      *unit
	events []webhook.Event
}

func (u *unit) subscribe(t *testing.T) *hookLog {
	t.Helper()
	if err := u.store.PutWebhookEndpoint(t.Context(), storage.WebhookEndpoint{ID: "ops", URL: "https://hooks.example.com",
		Secret: []byte("sealed"), Created: u.clk.Now()}); err != nil {
		t.Fatal(err)
	}
	return &hookLog{u: u}
}

// drain returns the events queued since the last drain, of the given
// types (all when none), and acknowledges every delivery.
func (h *hookLog) drain(t *testing.T, types ...string) []webhook.Event {
	t.Helper()
	ctx := t.Context()
	ds, err := h.u.store.DueWebhooks(ctx, h.u.clk.Now().Add(365*24*time.Hour), 10000)
	if err != nil {
		t.Fatal(err)
	}
	var out []webhook.Event
	for _, d := range ds {
		var e webhook.Event
		if err := json.Unmarshal(d.Body, &e); err != nil {
			t.Fatal(err)
		}
		h.events = append(h.events, e)
		if len(types) == 0 || contains(types, e.Type) {
			out = append(out, e)
		}
		if err := h.u.store.AckWebhook(ctx, d.EventID, d.Endpoint); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func ringData(t *testing.T, e webhook.Event) webhook.RingData {
	t.Helper()
	var d webhook.RingData
	if err := json.Unmarshal(e.Data, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// withRingEvents gives the unit a scheduler whose gate evaluations queue
// ring events, as the server wires it; calling it again is a new leader.
func (u *unit) withRingEvents() {
	u.useStore(u.store, scheduler.WithGateObserver(webhook.GateObserver(u.store, slog.New(slog.DiscardHandler))))
}

// TestRingEventsHeldThenPromoted: a plan whose pilot has not passed its
// gate announces ring.held for broad once, however many evaluations
// follow; a promotion by hand announces ring.started once, naming who
// promoted; a new leader (a new scheduler over the same store) evaluating
// the same gates announces neither again, though both were delivered.
func TestRingEventsHeldThenPromoted(t *testing.T) {
	u := newUnit(t, utcAt(2026, 3, 2, 9, 0))
	u.withRingEvents()
	hooks := u.subscribe(t)
	u.ringFleet()
	u.putRings(scheduler.RingPlan{ID: "macos", Groups: []string{"pilot", "broad"}})
	u.pass()
	held := hooks.drain(t, webhook.TypeRingHeld, webhook.TypeRingStarted)
	if len(held) != 1 || held[0].Type != webhook.TypeRingHeld {
		t.Fatalf("after the first gate evaluation: %+v, want one ring.held", held)
	}
	if d := ringData(t, held[0]); d.Plan != "macos" || d.Group != "broad" || d.GateGroup != "pilot" || d.Tally.Eligible != 2 ||
		d.Tally.Compliant != 0 || d.Reason != "0 of 2 Macs compliant (< 90 %)" || d.NeedsPromotion {
		t.Fatalf("ring.held data %+v", d)
	}
	for range 3 {
		u.clk.Set(u.clk.Now().Add(scheduler.RingGateInterval))
		u.pass()
	}
	if again := hooks.drain(t, webhook.TypeRingHeld, webhook.TypeRingStarted); len(again) != 0 {
		t.Fatalf("re-evaluations of the same shut gate queued %+v", again)
	}

	u.clk.Set(u.clk.Now().Add(time.Hour))
	promotedAt := u.clk.Now()
	if _, err := u.mgr.PromoteRing(t.Context(), "alice@example.com", "macos", "pilot"); err != nil {
		t.Fatal(err)
	}
	u.pass()
	started := hooks.drain(t, webhook.TypeRingHeld, webhook.TypeRingStarted)
	if len(started) != 1 || started[0].Type != webhook.TypeRingStarted {
		t.Fatalf("after the promotion: %+v, want one ring.started", started)
	}
	if d := ringData(t, started[0]); d.Group != "broad" || d.GateGroup != "pilot" || d.Cause != "promoted" ||
		d.PromotedBy != "alice@example.com" || !d.PromotedAt.Equal(promotedAt) || !d.Started.Equal(promotedAt) {
		t.Fatalf("ring.started data %+v", d)
	}

	// A new leader re-evaluates the same gates: nothing new to announce.
	u.withRingEvents()
	u.pass()
	u.clk.Set(u.clk.Now().Add(scheduler.RingGateInterval))
	u.pass()
	if again := hooks.drain(t, webhook.TypeRingHeld, webhook.TypeRingStarted); len(again) != 0 {
		t.Fatalf("the new leader queued %+v", again)
	}
}

// TestRingEventNeedsPromotion: when the gate's maximum wait passes with the
// gate shut, the held ring is announced once more, with needs_promotion.
func TestRingEventNeedsPromotion(t *testing.T) {
	u := newUnit(t, utcAt(2026, 3, 2, 9, 0))
	u.withRingEvents()
	hooks := u.subscribe(t)
	u.ringFleet()
	wait := 2
	u.putRings(scheduler.RingPlan{ID: "macos", Groups: []string{"pilot", "broad"}, Gate: scheduler.RingGate{MaxWaitHours: &wait}})
	u.pass()
	if got := hooks.drain(t, webhook.TypeRingHeld); len(got) != 1 || ringData(t, got[0]).NeedsPromotion {
		t.Fatalf("first evaluation: %+v", got)
	}
	u.clk.Set(u.clk.Now().Add(2*time.Hour + time.Minute))
	u.pass()
	u.clk.Set(u.clk.Now().Add(scheduler.RingGateInterval))
	u.pass()
	got := hooks.drain(t, webhook.TypeRingHeld)
	if len(got) != 1 || !ringData(t, got[0]).NeedsPromotion {
		t.Fatalf("after the maximum wait: %+v, want one ring.held with needs_promotion", got)
	}
}

// TestPauseDuringRingGate: a fleet pause while the pilot's gate holds broad
// queues rollout.paused, its resume rollout.resumed (who, when, why), each
// once, and neither repeats the ring.held already announced; the gate
// still opens on compliance after the resume and announces ring.started.
func TestPauseDuringRingGate(t *testing.T) {
	u := newUnit(t, utcAt(2026, 3, 2, 9, 0))
	u.withRingEvents()
	hooks := u.subscribe(t)
	u.ringFleet()
	u.putRings(scheduler.RingPlan{ID: "macos", Groups: []string{"pilot", "broad"}})
	u.pass()
	if got := hooks.drain(t, webhook.TypeRingHeld, webhook.TypeRolloutPaused); len(got) != 1 || got[0].Type != webhook.TypeRingHeld {
		t.Fatalf("before the pause: %+v", got)
	}
	u.clk.Set(utcAt(2026, 3, 19, 9, 0)) // the pilot is in notify
	u.pass()
	hooks.drain(t)
	if _, err := u.mgr.Pause(t.Context(), "alice@example.com", scheduler.FleetPause, "15.2 boot loops"); err != nil {
		t.Fatal(err)
	}
	u.pass()
	u.clk.Set(u.clk.Now().Add(scheduler.RingGateInterval))
	u.pass()
	got := hooks.drain(t, webhook.TypeRolloutPaused, webhook.TypeRolloutResumed, webhook.TypeRingHeld, webhook.TypeRingStarted)
	if len(got) != 1 || got[0].Type != webhook.TypeRolloutPaused {
		t.Fatalf("after the pause: %+v, want rollout.paused only", got)
	}
	var pd webhook.PauseData
	if err := json.Unmarshal(got[0].Data, &pd); err != nil || pd.Scope != "fleet" || pd.PausedBy != "alice@example.com" || pd.Reason != "15.2 boot loops" {
		t.Fatalf("rollout.paused data %+v, %v", pd, err)
	}
	u.clk.Set(u.clk.Now().Add(time.Hour))
	resumedAt := u.clk.Now()
	if err := u.mgr.Resume(t.Context(), "bob@example.com", scheduler.FleetPause); err != nil {
		t.Fatal(err)
	}
	u.pass()
	got = hooks.drain(t, webhook.TypeRolloutPaused, webhook.TypeRolloutResumed, webhook.TypeRingHeld, webhook.TypeRingStarted)
	if len(got) != 1 || got[0].Type != webhook.TypeRolloutResumed {
		t.Fatalf("after the resume: %+v, want rollout.resumed only", got)
	}
	if err := json.Unmarshal(got[0].Data, &pd); err != nil || pd.ResumedBy != "bob@example.com" || !pd.ResumedAt.Equal(resumedAt) || pd.Reason != "15.2 boot loops" {
		t.Fatalf("rollout.resumed data %+v, %v", pd, err)
	}
	for _, id := range []string{"pilot-1", "pilot-2"} {
		u.setInventory(id, mdm.Inventory{OSVersion: "15.2", SoftwareUpdateDeviceID: "J413AP", IsSupervised: true})
	}
	u.pass()
	u.clk.Set(u.clk.Now().Add(scheduler.RingGateInterval))
	u.pass()
	got = hooks.drain(t, webhook.TypeRingHeld, webhook.TypeRingStarted)
	if len(got) != 1 || got[0].Type != webhook.TypeRingStarted || ringData(t, got[0]).Cause != "gate_passed" {
		t.Fatalf("after the pilot complied: %+v, want one ring.started (gate passed)", got)
	}
}
