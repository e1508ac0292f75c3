package storagetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm/ddm"
)

// RunDDM runs the conformance suite for ddm.Store. newStore must return an
// empty store; the suite closes it if it is an io.Closer.
func RunDDM(t *testing.T, newStore func(t *testing.T) ddm.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s ddm.Store)
	}{
		{"EmptyRecord", testDDMEmpty},
		{"RoundTrip", testDDMRoundTrip},
		{"ErrorWritesNothing", testDDMErrorWritesNothing},
		{"HistoryBounded", testDDMHistoryBounded},
		{"Unconfirmed", testDDMUnconfirmed},
		{"SeparateEnrollments", testDDMSeparate},
		{"ItemUpdates", testDDMItemUpdates},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			if c, ok := s.(io.Closer); ok {
				t.Cleanup(func() { c.Close() })
			}
			tc.fn(t, s)
		})
	}
}

func enforcementAt(deadline time.Time, token string) *ddm.EnforcementState {
	return &ddm.EnforcementState{
		Payload:  ddm.EnforcementPayload{TargetOSVersion: "15.4", TargetLocalDateTime: deadline.Format(ddm.LocalDateTimeLayout)},
		Deadline: deadline, Zone: "UTC", ServerToken: token, SetAt: t0,
	}
}

func testDDMEmpty(t *testing.T, s ddm.Store) {
	ctx := t.Context()
	r, err := s.DDMRecord(ctx, "UNKNOWN")
	if err != nil || r == nil {
		t.Fatalf("DDMRecord(unknown) = %v, %v; want a zero record", r, err)
	}
	if !reflect.DeepEqual(*r, ddm.Record{}) {
		t.Errorf("DDMRecord(unknown) = %+v, want zero", r)
	}
	if h, err := s.DDMHistory(ctx, "UNKNOWN"); err != nil || len(h) != 0 {
		t.Errorf("DDMHistory(unknown) = %v, %v", h, err)
	}
	if ids, err := s.DDMUnconfirmed(ctx, t0.Add(1000*time.Hour), 0); err != nil || len(ids) != 0 {
		t.Errorf("DDMUnconfirmed on an empty store = %v, %v", ids, err)
	}
}

func testDDMRoundTrip(t *testing.T, s ddm.Store) {
	ctx := t.Context()
	want := ddm.Record{
		Enforcement:  enforcementAt(t0.Add(48*time.Hour), "tok-1"),
		SetChangedAt: t0,
		SyncSentAt:   t0.Add(time.Minute),
		Status: ddm.DeviceStatus{
			Items:   map[string]json.RawMessage{ddm.ItemOSVersion: json.RawMessage(`"15.3.1"`), ddm.ItemInstallState: json.RawMessage(`"waiting"`)},
			Current: ddm.Current{OSVersion: "15.3.1", InstallState: "waiting"},
			Declarations: []ddm.DeclarationStatus{{Kind: ddm.KindConfiguration, Identifier: ddm.IDEnforcement, Active: true, Valid: "valid", ServerToken: "tok-1",
				Reasons: []ddm.Reason{{Code: "Info.X", Details: json.RawMessage(`{"a":1}`)}}}},
			Reports: 1, LastReport: t0.Add(2 * time.Minute),
		},
	}
	want.Enforcement.FetchedAt = t0.Add(90 * time.Second)
	ev := ddm.Event{At: t0.Add(2 * time.Minute), Items: []string{ddm.ItemOSVersion}, Current: want.Status.Current, Enforcement: "pending"}
	err := s.UpdateDDM(ctx, "MAC-1", func(r *ddm.Record) ([]ddm.Event, error) {
		*r = want
		return []ddm.Event{ev}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.DDMRecord(ctx, "MAC-1")
	if err != nil {
		t.Fatal(err)
	}
	if !recordsEqual(*got, want) {
		t.Errorf("record round trip\n got %+v\nwant %+v", got, want)
	}
	h, err := s.DDMHistory(ctx, "MAC-1")
	if err != nil || len(h) != 1 || !h[0].At.Equal(ev.At) || h[0].Enforcement != "pending" || !reflect.DeepEqual(h[0].Current, ev.Current) {
		t.Errorf("history = %+v, %v", h, err)
	}
	// fn sees the stored record.
	err = s.UpdateDDM(ctx, "MAC-1", func(r *ddm.Record) ([]ddm.Event, error) {
		if !recordsEqual(*r, want) {
			return nil, fmt.Errorf("fn saw %+v", r)
		}
		r.Status.Reports++
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := s.DDMRecord(ctx, "MAC-1"); got.Status.Reports != 2 {
		t.Errorf("Reports = %d after an update, want 2", got.Status.Reports)
	}
}

// recordsEqual compares records with time.Time.Equal and raw JSON by value.
func recordsEqual(a, b ddm.Record) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func testDDMErrorWritesNothing(t *testing.T, s ddm.Store) {
	ctx := t.Context()
	err := s.UpdateDDM(ctx, "MAC-1", func(r *ddm.Record) ([]ddm.Event, error) {
		r.Enforcement = enforcementAt(t0, "tok")
		return []ddm.Event{{At: t0}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err = s.UpdateDDM(ctx, "MAC-1", func(r *ddm.Record) ([]ddm.Event, error) {
		r.Enforcement = nil
		r.Status.Reports = 99
		return []ddm.Event{{At: t0.Add(time.Hour)}}, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("UpdateDDM err = %v, want boom", err)
	}
	r, _ := s.DDMRecord(ctx, "MAC-1")
	if r.Enforcement == nil || r.Status.Reports != 0 {
		t.Errorf("a failed update changed the record: %+v", r)
	}
	if h, _ := s.DDMHistory(ctx, "MAC-1"); len(h) != 1 {
		t.Errorf("a failed update changed the history: %d events", len(h))
	}
	if ids, _ := s.DDMUnconfirmed(ctx, t0.Add(time.Hour), 0); !slices.Equal(ids, []string{"MAC-1"}) {
		t.Errorf("a failed update changed the index: %v", ids)
	}
	// A failed first update creates nothing.
	_ = s.UpdateDDM(ctx, "MAC-2", func(r *ddm.Record) ([]ddm.Event, error) {
		r.Enforcement = enforcementAt(t0, "tok")
		return nil, boom
	})
	if ids, _ := s.DDMUnconfirmed(ctx, t0.Add(time.Hour), 0); len(ids) != 1 {
		t.Errorf("a failed first update indexed the record: %v", ids)
	}
}

func testDDMHistoryBounded(t *testing.T, s ddm.Store) {
	ctx := t.Context()
	total := ddm.HistoryLimit + 7
	for i := range total {
		// Two events in one update, to check the trim after a batch too.
		err := s.UpdateDDM(ctx, "MAC-1", func(r *ddm.Record) ([]ddm.Event, error) {
			if i == total-1 {
				return []ddm.Event{{At: t0.Add(time.Duration(i) * time.Minute)}, {At: t0.Add(time.Duration(i)*time.Minute + time.Second)}}, nil
			}
			return []ddm.Event{{At: t0.Add(time.Duration(i) * time.Minute)}}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	h, err := s.DDMHistory(ctx, "MAC-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != ddm.HistoryLimit {
		t.Fatalf("history holds %d events, want %d", len(h), ddm.HistoryLimit)
	}
	last := t0.Add(time.Duration(total-1)*time.Minute + time.Second)
	if !h[len(h)-1].At.Equal(last) {
		t.Errorf("newest event at %v, want %v", h[len(h)-1].At, last)
	}
	for i := 1; i < len(h); i++ {
		if !h[i].At.After(h[i-1].At) {
			t.Fatalf("history not oldest first at %d: %v then %v", i, h[i-1].At, h[i].At)
		}
	}
}

func testDDMUnconfirmed(t *testing.T, s ddm.Store) {
	ctx := t.Context()
	set := func(id string, fn func(r *ddm.Record)) {
		t.Helper()
		if err := s.UpdateDDM(ctx, id, func(r *ddm.Record) ([]ddm.Event, error) { fn(r); return nil, nil }); err != nil {
			t.Fatal(err)
		}
	}
	// Deadlines: C at +1h, A at +2h, B at +3h, D confirmed at +1h, E none.
	set("A", func(r *ddm.Record) { r.Enforcement = enforcementAt(t0.Add(2*time.Hour), "a") })
	set("B", func(r *ddm.Record) { r.Enforcement = enforcementAt(t0.Add(3*time.Hour), "b") })
	set("C", func(r *ddm.Record) { r.Enforcement = enforcementAt(t0.Add(time.Hour), "c") })
	set("D", func(r *ddm.Record) {
		r.Enforcement = enforcementAt(t0.Add(time.Hour), "d")
		r.Enforcement.Confirmed = true
	})
	set("E", func(r *ddm.Record) { r.Status.Reports = 1 })
	tests := []struct {
		name   string
		before time.Time
		limit  int
		want   []string
	}{
		{"nothing before the first deadline", t0.Add(time.Hour), 0, nil},
		{"strictly before", t0.Add(2 * time.Hour), 0, []string{"C"}},
		{"all, earliest first", t0.Add(24 * time.Hour), 0, []string{"C", "A", "B"}},
		{"limit", t0.Add(24 * time.Hour), 2, []string{"C", "A"}},
	}
	for _, tc := range tests {
		got, err := s.DDMUnconfirmed(ctx, tc.before, tc.limit)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: DDMUnconfirmed = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	// Confirming, moving and removing keep the index right.
	set("C", func(r *ddm.Record) { r.Enforcement.Confirmed = true })
	set("A", func(r *ddm.Record) { r.Enforcement.Deadline = t0.Add(5 * time.Hour) })
	set("B", func(r *ddm.Record) { r.Enforcement = nil })
	set("D", func(r *ddm.Record) { r.Enforcement.Confirmed = false })
	got, err := s.DDMUnconfirmed(ctx, t0.Add(24*time.Hour), 0)
	if want := []string{"D", "A"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("after changes: DDMUnconfirmed = %v, %v; want %v", got, err, want)
	}
}

func testDDMSeparate(t *testing.T, s ddm.Store) {
	ctx := t.Context()
	ids := []string{"A", "A:USER", "AB"}
	for i, id := range ids {
		err := s.UpdateDDM(ctx, id, func(r *ddm.Record) ([]ddm.Event, error) {
			r.Status.Reports = i + 1
			evs := make([]ddm.Event, i+1)
			for j := range evs {
				evs[j].At = t0.Add(time.Duration(j) * time.Second)
			}
			return evs, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, id := range ids {
		r, err := s.DDMRecord(ctx, id)
		if err != nil || r.Status.Reports != i+1 {
			t.Errorf("%s: record = %+v, %v", id, r, err)
		}
		if h, err := s.DDMHistory(ctx, id); err != nil || len(h) != i+1 {
			t.Errorf("%s: %d events, %v; want %d", id, len(h), err, i+1)
		}
	}
}
