package storagetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// WebhookPauseStore is a backend's webhook side and its pause store.
type WebhookPauseStore interface {
	WebhookStore
	scheduler.PauseStore
	scheduler.GroupStore
}

// RunWebhookPause checks that a pause queues rollout.paused and a resume
// rollout.resumed (naming the pause, who resumed and when) in the same
// transaction as the change, to subscribed endpoints only, and that a
// refused pause or resume queues nothing.
func RunWebhookPause(t *testing.T, newStore func(t *testing.T) WebhookPauseStore) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	s := newStore(t)
	ctx := t.Context()
	if err := s.PutGroup(ctx, scheduler.Group{ID: "pilot"}, nil); err != nil {
		t.Fatal(err)
	}
	for _, e := range []storage.WebhookEndpoint{
		{ID: "ops", URL: "https://a", Events: []string{"rollout.paused", "rollout.resumed"}, Secret: []byte("s"), Created: t0},
		{ID: "fails", URL: "https://b", Events: []string{"device.failed"}, Secret: []byte("s"), Created: t0},
	} {
		if err := s.PutWebhookEndpoint(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	p := scheduler.Pause{GroupID: "pilot", Reason: "boot loops", Actor: "alice", At: t0}
	if err := s.PutPause(ctx, p, nil); err != nil {
		t.Fatal(err)
	}
	// Refused: an unknown group, a resume of a group not paused.
	if err := s.PutPause(ctx, scheduler.Pause{GroupID: "nope", Reason: "x", Actor: "a", At: t0}, nil); err == nil {
		t.Fatal("pause of an unknown group accepted")
	}
	if err := s.DeletePause(ctx, scheduler.FleetPause, nil); err == nil {
		t.Fatal("resume of a fleet that is not paused accepted")
	}
	audit, err := scheduler.NewAuditEntry(t0.Add(time.Hour), "bob", "rollout.resume", "group/pilot", p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePause(ctx, "pilot", audit); err != nil {
		t.Fatal(err)
	}
	due, err := s.DueWebhooks(ctx, t0.Add(2*time.Hour), 100)
	if err != nil || len(due) != 2 {
		t.Fatalf("queued %+v, %v; want a pause and a resume", due, err)
	}
	byType := map[string]map[string]any{}
	for _, d := range due {
		if d.Endpoint != "ops" {
			t.Fatalf("delivery to %s, which subscribes to device.failed only", d.Endpoint)
		}
		var ev struct {
			Data map[string]any `json:"data"`
		}
		if err := json.Unmarshal(d.Body, &ev); err != nil {
			t.Fatal(err)
		}
		byType[d.Type] = ev.Data
	}
	if d := byType["rollout.paused"]; d == nil || d["scope"] != "group" || d["group_id"] != "pilot" || d["reason"] != "boot loops" || d["paused_by"] != "alice" {
		t.Fatalf("rollout.paused data %v", d)
	}
	if d := byType["rollout.resumed"]; d == nil || d["resumed_by"] != "bob" || d["resumed_at"] != "2026-03-02T10:00:00Z" || d["reason"] != "boot loops" {
		t.Fatalf("rollout.resumed data %v", d)
	}
}
