package pgsql

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm/ddm"
	"github.com/sundial-mdm/sundial/storage/storagetest"
)

func TestDDMConformance(t *testing.T) {
	testDSN(t)
	storagetest.RunDDM(t, func(t *testing.T) ddm.Store {
		db := newTestDB(t)
		s, err := Open(t.Context(), db.dsn, db.option())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestDDMConcurrentReplicas has three replicas update one enrollment at
// once: every update sees the one before (no lost update), and the history
// holds the newest events in order.
func TestDDMConcurrentReplicas(t *testing.T) {
	db := newTestDB(t)
	stores := []*Store{db.open(t), db.open(t), db.open(t)}
	ctx := t.Context()
	const perReplica = 40
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		calls int
		errs  []error
	)
	for _, s := range stores {
		for range 2 { // two workers per replica
			wg.Go(func() {
				for range perReplica / 2 {
					err := s.UpdateDDM(ctx, "MAC-1", func(r *ddm.Record) ([]ddm.Event, error) {
						mu.Lock()
						calls++
						mu.Unlock()
						r.Status.Reports++
						return []ddm.Event{{At: t0.Add(time.Duration(r.Status.Reports) * time.Second)}}, nil
					})
					if err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
					}
				}
			})
		}
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d updates failed, first: %v", len(errs), errs[0])
	}
	total := len(stores) * perReplica
	r, err := stores[0].DDMRecord(ctx, "MAC-1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status.Reports != total {
		t.Errorf("Reports = %d after %d updates (%d fn calls): an update was lost", r.Status.Reports, total, calls)
	}
	h, err := stores[1].DDMHistory(ctx, "MAC-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != ddm.HistoryLimit {
		t.Fatalf("history holds %d events, want %d", len(h), ddm.HistoryLimit)
	}
	// Reports numbered the events: the newest HistoryLimit, consecutive.
	for i, ev := range h {
		if want := t0.Add(time.Duration(total-ddm.HistoryLimit+1+i) * time.Second); !ev.At.Equal(want) {
			t.Fatalf("event %d at %v, want %v", i, ev.At, want)
		}
	}
}

// TestDDMConcurrentFirstUpdate races the first update of many enrollments
// from two replicas: the row is created once and both updates apply.
func TestDDMConcurrentFirstUpdate(t *testing.T) {
	db := newTestDB(t)
	a, b := db.open(t), db.open(t)
	ctx := t.Context()
	ids := []string{"N1", "N2", "N3", "N4", "N5", "N6", "N7", "N8"}
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(ids))
	for _, s := range []*Store{a, b} {
		for _, id := range ids {
			wg.Go(func() {
				errs <- s.UpdateDDM(ctx, id, func(r *ddm.Record) ([]ddm.Event, error) {
					r.Status.Reports++
					return []ddm.Event{{At: t0}}, nil
				})
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids {
		r, _ := a.DDMRecord(ctx, id)
		h, _ := b.DDMHistory(ctx, id)
		if r.Status.Reports != 2 || len(h) != 2 {
			t.Errorf("%s: Reports %d, %d events; want 2 and 2", id, r.Status.Reports, len(h))
		}
	}
}

// TestDDMRawItemsKept stores the device's status items byte for byte
// (json, not jsonb, which would reorder keys and add spaces).
func TestDDMRawItemsKept(t *testing.T) {
	s := newTestDB(t).open(t)
	ctx := t.Context()
	raw := json.RawMessage(`{"z":1,"a":[true,null],"m":"x"}`)
	err := s.UpdateDDM(ctx, "MAC-1", func(r *ddm.Record) ([]ddm.Event, error) {
		r.Status.Items = map[string]json.RawMessage{"device.x": raw}
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.DDMRecord(ctx, "MAC-1")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(r.Status.Items["device.x"]); got != string(raw) {
		t.Errorf("item = %s, want %s", got, raw)
	}
}

func TestDDMBadInput(t *testing.T) {
	s := newTestDB(t).open(t)
	ctx := t.Context()
	called := false
	fn := func(r *ddm.Record) ([]ddm.Event, error) { called = true; return nil, nil }
	tests := []struct {
		name string
		id   string
	}{
		{"empty id", ""},
		{"NUL in id", "MAC\x00-1"},
	}
	for _, tc := range tests {
		if err := s.UpdateDDM(ctx, tc.id, fn); err == nil || !strings.Contains(err.Error(), "invalid enrollment id") {
			t.Errorf("%s: err = %v", tc.name, err)
		}
	}
	if called {
		t.Error("fn was called for an invalid id")
	}
	// An error from fn comes back as is, unwrapped.
	boom := errors.New("boom")
	if err := s.UpdateDDM(ctx, "MAC-1", func(*ddm.Record) ([]ddm.Event, error) { return nil, boom }); err != boom {
		t.Errorf("err = %v, want boom itself", err)
	}
}

func BenchmarkUpdateDDM(b *testing.B) {
	s := newTestDB(b).open(b)
	ctx := b.Context()
	ev := []ddm.Event{{At: t0, Items: []string{ddm.ItemOSVersion}, Current: ddm.Current{OSVersion: "15.3.1"}}}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		err := s.UpdateDDM(ctx, "MAC-1", func(r *ddm.Record) ([]ddm.Event, error) {
			r.Status.Reports = i
			r.Status.Current.OSVersion = "15.3.1"
			return ev, nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
