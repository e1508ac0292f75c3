package pgsql

import (
	"sync"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/storagetest"
)

func TestAgentConformance(t *testing.T) {
	testDSN(t)
	storagetest.RunAgent(t, func(t *testing.T) storagetest.AgentBackend {
		db := newTestDB(t)
		s, err := Open(t.Context(), db.dsn, db.option())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestAgentConcurrentReports appends reports of one device from two
// replicas at once: no event is lost or numbered twice and the history
// stays bounded.
func TestAgentConcurrentReports(t *testing.T) {
	db := newTestDB(t)
	a, b := db.open(t), db.open(t)
	ctx := t.Context()
	enroll(t, a, "AGENT-1")
	if err := a.PutAgentSecret(ctx, "AGENT-1", "h", t0); err != nil {
		t.Fatal(err)
	}
	const perReplica, perReport = 20, 20 // 800 events in all, above MaxAgentEvents
	var wg sync.WaitGroup
	errs := make(chan error, 2*perReplica)
	for r, s := range []*Store{a, b} {
		wg.Go(func() {
			for i := range perReplica {
				evs := make([]storage.AgentEvent, perReport)
				for j := range evs {
					evs[j] = storage.AgentEvent{Kind: "prompt_shown", At: t0.Add(time.Duration(r*perReplica*perReport+i*perReport+j) * time.Second)}
				}
				if err := s.AppendAgentReport(ctx, "AGENT-1", storage.AgentReport{Events: evs}, t0); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st, err := a.AgentState(ctx, "AGENT-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Events) != storage.MaxAgentEvents {
		t.Errorf("%d events kept, want %d", len(st.Events), storage.MaxAgentEvents)
	}
	var seqs, rows int64
	conn := db.conn(t)
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, `SELECT event_seq, (SELECT count(*) FROM agent_events) FROM agents WHERE id = 'AGENT-1'`).Scan(&seqs, &rows); err != nil {
		t.Fatal(err)
	}
	if want := int64(2 * perReplica * perReport); seqs != want {
		t.Errorf("event_seq = %d, want %d (an append was lost)", seqs, want)
	}
	// Each replica appended its events in order: they are kept in order.
	last := map[bool]time.Time{}
	for i, ev := range st.Events {
		second := ev.At.Sub(t0) >= perReplica*perReport*time.Second
		if prev, ok := last[second]; ok && !ev.At.After(prev) {
			t.Fatalf("event %d out of order: %v after %v", i, ev.At, prev)
		}
		last[second] = ev.At
	}
	if rows > storage.MaxAgentEvents+perReport {
		t.Errorf("%d event rows stored, want about %d", rows, storage.MaxAgentEvents)
	}
}

// TestAgentOversizedReport keeps only the newest MaxAgentEvents of one
// report bigger than the bound.
func TestAgentOversizedReport(t *testing.T) {
	db := newTestDB(t)
	s := db.open(t)
	ctx := t.Context()
	enroll(t, s, "AGENT-2")
	if err := s.PutAgentSecret(ctx, "AGENT-2", "h", t0); err != nil {
		t.Fatal(err)
	}
	n := storage.MaxAgentEvents + 25
	evs := make([]storage.AgentEvent, n)
	for i := range evs {
		evs[i] = storage.AgentEvent{Kind: "k", At: t0.Add(time.Duration(i) * time.Second)}
	}
	if err := s.AppendAgentReport(ctx, "AGENT-2", storage.AgentReport{TimeZone: "Asia/Tokyo", Events: evs}, t0); err != nil {
		t.Fatal(err)
	}
	st, err := s.AgentState(ctx, "AGENT-2")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Events) != storage.MaxAgentEvents || !st.Events[0].At.Equal(evs[25].At) || !st.Events[len(st.Events)-1].At.Equal(evs[n-1].At) {
		t.Errorf("kept %d events from %v to %v", len(st.Events), st.Events[0].At, st.Events[len(st.Events)-1].At)
	}
	if st.TimeZone != "Asia/Tokyo" {
		t.Errorf("zone = %q", st.TimeZone)
	}
}
