package storagetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/storage"
)

// AgentBackend is a backend that keeps agent state.
type AgentBackend interface {
	storage.All
	storage.AgentStore
}

// RunAgent runs the agent-store conformance tests.
func RunAgent(t *testing.T, newStore func(t *testing.T) AgentBackend) {
	t.Run("ProvisionAgent", func(t *testing.T) {
		s := newStore(t)
		t.Cleanup(func() { s.Close() })
		testProvisionAgent(t, s)
	})
	t.Run("Agent", func(t *testing.T) {
		s := newStore(t)
		t.Cleanup(func() { s.Close() })
		ctx := context.Background()
		if err := s.PutAgentSecret(ctx, "ghost", "h", t0); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("secret for unknown device err = %v", err)
		}
		enroll(t, s, "AAA-1", "h1")
		if _, err := s.AgentSecretHash(ctx, "AAA-1"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("hash before any secret err = %v", err)
		}
		if err := s.AppendAgentReport(ctx, "AAA-1", storage.AgentReport{}, t0); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("report before any secret err = %v", err)
		}
		if err := s.PutAgentSecret(ctx, "AAA-1", "hash1", t0); err != nil {
			t.Fatal(err)
		}
		if h, err := s.AgentSecretHash(ctx, "AAA-1"); err != nil || h != "hash1" {
			t.Errorf("hash = %q, %v", h, err)
		}
		ev := func(kind string, i int) storage.AgentEvent {
			return storage.AgentEvent{Kind: kind, At: t0.Add(time.Duration(i) * time.Minute)}
		}
		rep := storage.AgentReport{TimeZone: "Europe/Berlin", Events: []storage.AgentEvent{ev("prompt_shown", 0), ev("user_choice", 1)}}
		if err := s.AppendAgentReport(ctx, "AAA-1", rep, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		// A report without a zone keeps the known one; history is bounded.
		var many []storage.AgentEvent
		for i := range storage.MaxAgentEvents {
			many = append(many, ev("prompt_shown", i+2))
		}
		if err := s.AppendAgentReport(ctx, "AAA-1", storage.AgentReport{Events: many}, t0.Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		st, err := s.AgentState(ctx, "AAA-1")
		if err != nil {
			t.Fatal(err)
		}
		if st.TimeZone != "Europe/Berlin" || !st.LastReportAt.Equal(t0.Add(2*time.Hour)) || len(st.Events) != storage.MaxAgentEvents {
			t.Errorf("state = zone %q, last %v, %d events", st.TimeZone, st.LastReportAt, len(st.Events))
		}
		if st.Events[0].Kind != "prompt_shown" || !st.Events[len(st.Events)-1].At.Equal(t0.Add(time.Duration(storage.MaxAgentEvents+1)*time.Minute)) {
			t.Errorf("history not trimmed from the oldest: first %+v last %+v", st.Events[0], st.Events[len(st.Events)-1])
		}
		// Rotation replaces the hash and keeps the history.
		if err := s.PutAgentSecret(ctx, "AAA-1", "hash2", t0.Add(3*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if h, _ := s.AgentSecretHash(ctx, "AAA-1"); h != "hash2" {
			t.Errorf("rotated hash = %q", h)
		}
		if st, _ := s.AgentState(ctx, "AAA-1"); len(st.Events) != storage.MaxAgentEvents || !st.SecretSetAt.Equal(t0.Add(3*time.Hour)) {
			t.Errorf("rotation lost state: %+v", st.SecretSetAt)
		}
	})
}
