package storagetest

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// PauseStore is what RunPauses tests.
type PauseStore interface {
	scheduler.PauseStore
	scheduler.GroupStore
	scheduler.AuditLog
}

// RunPauses runs the conformance suite of scheduler.PauseStore (the
// rollout kill switch). newStore must return an empty store.
func RunPauses(t *testing.T, newStore func(t *testing.T) PauseStore) {
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	audit := func(action string) *scheduler.AuditEntry {
		a, err := scheduler.NewAuditEntry(at, "admin@example.com", action, "x", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	t.Run("PutListDelete", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		if got, err := s.Pauses(ctx); err != nil || len(got) != 0 {
			t.Fatalf("empty store: %v %v", got, err)
		}
		if err := s.PutGroup(ctx, scheduler.Group{ID: "pilot", Name: "Pilot"}, nil); err != nil {
			t.Fatal(err)
		}
		fleet := scheduler.Pause{GroupID: scheduler.FleetPause, Reason: "bad build", Actor: "admin@example.com", At: at}
		pilot := scheduler.Pause{GroupID: "pilot", Reason: "pilot reports boot loops", Actor: "ops@example.com", At: at.Add(time.Minute)}
		if err := s.PutPause(ctx, pilot, audit("rollout.pause")); err != nil {
			t.Fatal(err)
		}
		if err := s.PutPause(ctx, fleet, audit("rollout.pause")); err != nil {
			t.Fatal(err)
		}
		want := []scheduler.Pause{fleet, pilot}
		if got, err := s.Pauses(ctx); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("pauses = %+v, %v; want %+v", got, err, want)
		}
		// Pausing again replaces the reason.
		pilot.Reason = "still investigating"
		if err := s.PutPause(ctx, pilot, nil); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Pauses(ctx); err != nil || len(got) != 2 || got[1].Reason != "still investigating" {
			t.Fatalf("pauses after replace = %+v, %v", got, err)
		}
		if err := s.DeletePause(ctx, scheduler.FleetPause, audit("rollout.resume")); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Pauses(ctx); err != nil || !reflect.DeepEqual(got, []scheduler.Pause{pilot}) {
			t.Fatalf("pauses after resume = %+v, %v", got, err)
		}
		if err := s.DeletePause(ctx, scheduler.FleetPause, nil); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("resume twice = %v, want ErrNotFound", err)
		}
		entries, err := s.Audit(ctx, 0, 10)
		if err != nil || len(entries) != 3 {
			t.Fatalf("audit = %+v, %v; want 2 pauses and 1 resume", entries, err)
		}
	})
	t.Run("UnknownGroup", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		err := s.PutPause(ctx, scheduler.Pause{GroupID: "nope", Reason: "x", Actor: "a", At: at}, audit("rollout.pause"))
		if !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("pause of unknown group = %v, want ErrNotFound", err)
		}
		if got, _ := s.Pauses(ctx); len(got) != 0 {
			t.Fatalf("refused pause stored: %+v", got)
		}
		if entries, _ := s.Audit(ctx, 0, 10); len(entries) != 0 {
			t.Fatalf("refused pause audited: %+v", entries)
		}
		// The default group always exists.
		if err := s.PutPause(ctx, scheduler.Pause{GroupID: scheduler.DefaultGroupID, Reason: "x", Actor: "a", At: at}, nil); err != nil {
			t.Fatal(err)
		}
	})
}
