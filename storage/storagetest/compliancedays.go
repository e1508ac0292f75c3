package storagetest

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/storage"
)

// RunComplianceDays runs the conformance suite of storage.ComplianceDayStore.
func RunComplianceDays(t *testing.T, newStore func(t *testing.T) storage.ComplianceDayStore) {
	t.Run("ReplaceAndRead", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		if got, err := s.ComplianceDays(ctx, "2026-01-01"); err != nil || len(got) != 0 {
			t.Fatalf("empty store: %v %v", got, err)
		}
		d1 := []storage.ComplianceDay{
			{Day: "2026-03-02", GroupID: "pilot", Devices: 10, Managed: 10, Compliant: 4},
			{Day: "2026-03-02", GroupID: "default", Devices: 5, Managed: 0, Compliant: 0},
		}
		d2 := []storage.ComplianceDay{{Day: "2026-03-03", GroupID: "pilot", Devices: 10, Managed: 10, Compliant: 7}}
		for day, rows := range map[string][]storage.ComplianceDay{"2026-03-02": d1, "2026-03-03": d2} {
			if err := s.PutComplianceDay(ctx, day, rows); err != nil {
				t.Fatal(err)
			}
		}
		want := []storage.ComplianceDay{d1[1], d1[0], d2[0]} // by day, then group
		if got, err := s.ComplianceDays(ctx, "2026-03-01"); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("days = %+v, %v; want %+v", got, err, want)
		}
		if got, err := s.ComplianceDays(ctx, "2026-03-03"); err != nil || !reflect.DeepEqual(got, d2) {
			t.Fatalf("days since 03-03 = %+v, %v", got, err)
		}
		// Writing a day again replaces its rows.
		again := []storage.ComplianceDay{{Day: "2026-03-02", GroupID: "pilot", Devices: 11, Managed: 11, Compliant: 5}}
		if err := s.PutComplianceDay(ctx, "2026-03-02", again); err != nil {
			t.Fatal(err)
		}
		if got, err := s.ComplianceDays(ctx, "2026-03-01"); err != nil || !reflect.DeepEqual(got, append(again, d2...)) {
			t.Fatalf("after rewrite = %+v, %v", got, err)
		}
	})
	t.Run("BadInputChangesNothing", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		good := []storage.ComplianceDay{{Day: "2026-03-02", GroupID: "pilot", Devices: 3, Managed: 2, Compliant: 1}}
		if err := s.PutComplianceDay(ctx, "2026-03-02", good); err != nil {
			t.Fatal(err)
		}
		many := make([]storage.ComplianceDay, storage.MaxComplianceGroups+1)
		for i := range many {
			many[i] = storage.ComplianceDay{Day: "2026-03-02", GroupID: fmt.Sprintf("g%d", i)}
		}
		for name, tc := range map[string]struct {
			day  string
			rows []storage.ComplianceDay
		}{
			"malformed day":   {"2026-3-2", nil},
			"impossible day":  {"2026-02-30", nil},
			"too many groups": {"2026-03-02", many},
			"other day":       {"2026-03-02", []storage.ComplianceDay{{Day: "2026-03-01", GroupID: "pilot"}}},
			"empty group":     {"2026-03-02", []storage.ComplianceDay{{Day: "2026-03-02"}}},
			"group twice":     {"2026-03-02", []storage.ComplianceDay{{Day: "2026-03-02", GroupID: "a"}, {Day: "2026-03-02", GroupID: "a"}}},
			"bad counts":      {"2026-03-02", []storage.ComplianceDay{{Day: "2026-03-02", GroupID: "a", Devices: 1, Managed: 2}}},
			"negative":        {"2026-03-02", []storage.ComplianceDay{{Day: "2026-03-02", GroupID: "a", Devices: -1}}},
		} {
			if err := s.PutComplianceDay(ctx, tc.day, tc.rows); err == nil {
				t.Errorf("%s: accepted", name)
			}
		}
		if got, err := s.ComplianceDays(ctx, "2000-01-01"); err != nil || !reflect.DeepEqual(got, good) {
			t.Fatalf("after refused writes = %+v, %v", got, err)
		}
		if _, err := s.ComplianceDays(ctx, "yesterday"); err == nil {
			t.Error("a malformed since was accepted")
		}
	})
	t.Run("Retention", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		first := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		for _, d := range []time.Time{first, first.AddDate(0, 0, 1), first.AddDate(0, 0, storage.MaxComplianceDays+1)} {
			day := d.Format(time.DateOnly)
			if err := s.PutComplianceDay(ctx, day, []storage.ComplianceDay{{Day: day, GroupID: "g", Devices: 1, Managed: 1, Compliant: 1}}); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.ComplianceDays(ctx, "2000-01-01")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Day != first.AddDate(0, 0, 1).Format(time.DateOnly) {
			t.Fatalf("kept days %+v; want the first dropped", got)
		}
	})
}
