package storagetest

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// RingStore is what RunRingPlans tests.
type RingStore interface {
	scheduler.RingStore
	scheduler.GroupStore
	scheduler.AuditLog
}

// RunRingPlans runs the conformance suite of scheduler.RingStore (ring
// plans of health-gated rings). newStore must return an empty store.
func RunRingPlans(t *testing.T, newStore func(t *testing.T) RingStore) {
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	audit := func(action string) *scheduler.AuditEntry {
		a, err := scheduler.NewAuditEntry(at, "admin@example.com", action, "x", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	groups := func(t *testing.T, s RingStore, ids ...string) {
		for _, id := range ids {
			if err := s.PutGroup(t.Context(), scheduler.Group{ID: id, Name: id}, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	pct := func(v int) *int { return &v }
	t.Run("PutListReplaceDelete", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		if got, err := s.RingPlans(ctx); err != nil || len(got) != 0 {
			t.Fatalf("empty store: %v %v", got, err)
		}
		groups(t, s, "pilot", "early", "broad")
		a := scheduler.RingPlan{ID: "macos", Groups: []string{"pilot", "early", "broad"},
			Gate: scheduler.RingGate{MinCompliantPercent: pct(95), MaxFailedPercent: pct(0)}}
		b := scheduler.RingPlan{ID: "alpha", Groups: []string{"early", "pilot"}}
		if err := s.PutRingPlan(ctx, a, audit("rings.set")); err != nil {
			t.Fatal(err)
		}
		if err := s.PutRingPlan(ctx, b, audit("rings.set")); err != nil {
			t.Fatal(err)
		}
		if got, err := s.RingPlans(ctx); err != nil || !reflect.DeepEqual(got, []scheduler.RingPlan{b, a}) {
			t.Fatalf("plans = %+v, %v; want %+v", got, err, []scheduler.RingPlan{b, a})
		}
		// Progress (a start, a promotion) is stored with the plan.
		a.States = []scheduler.RingState{
			{Started: at, Promoted: &scheduler.Promotion{At: at.Add(time.Hour), Actor: "ops@example.com"}},
			{Started: at.Add(time.Hour)}, {}}
		if err := s.PutRingPlan(ctx, a, audit("rings.promote")); err != nil {
			t.Fatal(err)
		}
		got, err := s.RingPlans(ctx)
		if err != nil || len(got) != 2 || !reflect.DeepEqual(got[1], a) {
			t.Fatalf("plans after promotion = %+v, %v; want %+v", got, err, a)
		}
		if !got[1].States[0].Started.Equal(at) || got[1].States[0].Promoted.Actor != "ops@example.com" {
			t.Fatalf("states = %+v", got[1].States)
		}
		if err := s.DeleteRingPlan(ctx, "alpha", audit("rings.delete")); err != nil {
			t.Fatal(err)
		}
		if got, err := s.RingPlans(ctx); err != nil || len(got) != 1 || got[0].ID != "macos" {
			t.Fatalf("plans after delete = %+v, %v", got, err)
		}
		if err := s.DeleteRingPlan(ctx, "alpha", nil); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("delete twice = %v, want ErrNotFound", err)
		}
		entries, err := s.Audit(ctx, 0, 10)
		if err != nil || len(entries) != 4 {
			t.Fatalf("audit = %+v, %v; want 3 sets and 1 delete", entries, err)
		}
	})
	t.Run("UnknownGroup", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		groups(t, s, "pilot")
		err := s.PutRingPlan(ctx, scheduler.RingPlan{ID: "p", Groups: []string{"pilot", "nope"}}, audit("rings.set"))
		if !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("plan with unknown group = %v, want ErrNotFound", err)
		}
		if got, err := s.RingPlans(ctx); err != nil || len(got) != 0 {
			t.Fatalf("plans after refused put = %+v, %v", got, err)
		}
		if entries, err := s.Audit(ctx, 0, 10); err != nil || len(entries) != 0 {
			t.Fatalf("audit after refused put = %+v, %v", entries, err)
		}
	})
	t.Run("Invalid", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		groups(t, s, "pilot", "broad")
		for name, p := range map[string]scheduler.RingPlan{
			"one ring":  {ID: "p", Groups: []string{"pilot"}},
			"twice":     {ID: "p", Groups: []string{"pilot", "pilot"}},
			"bad id":    {ID: "bad id/", Groups: []string{"pilot", "broad"}},
			"bad gate":  {ID: "p", Groups: []string{"pilot", "broad"}, Gate: scheduler.RingGate{MinCompliantPercent: pct(101)}},
			"misstates": {ID: "p", Groups: []string{"pilot", "broad"}, States: []scheduler.RingState{{}}},
		} {
			if err := s.PutRingPlan(ctx, p, nil); !errors.Is(err, scheduler.ErrInvalid) && !errors.Is(err, scheduler.ErrInvalidGate) {
				t.Errorf("%s: err = %v, want invalid", name, err)
			}
		}
		if got, err := s.RingPlans(ctx); err != nil || len(got) != 0 {
			t.Fatalf("plans after invalid puts = %+v, %v", got, err)
		}
	})
}
