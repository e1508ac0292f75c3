package storagetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// evidenceDay is a day of evidence taken at noon UTC, with a fleet row, a
// ring's row and an exception.
func evidenceDay(day string, compliant int) storage.EvidenceDay {
	at, _ := time.Parse(time.DateOnly, day)
	posted := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	return storage.EvidenceDay{
		Day: day, TakenAt: at.Add(12 * time.Hour),
		Rows: []storage.EvidenceRow{
			{Managed: 10, Compliant: compliant, DeadlinePassed: 4, OnTime: 3, Patched: 2,
				FromReleaseMedian: 86400, FromReleaseP90: 3 * 86400, FromNoticeMedian: 3600, FromNoticeP90: 7200, Exceptions: 1,
				Releases: []storage.EvidenceRelease{{Version: "15.4", Posted: posted, Required: 9, PatchedAfter: [][2]int{{1, 1}, {3, 1}}}}},
			{GroupID: "pilot", Plan: "macos", Ring: 1, Managed: 10, Compliant: compliant},
		},
		Exceptions: []storage.EvidenceException{{Scope: "device", ID: "MAC-1", GroupID: "pilot", Exempt: true,
			Expires: at.AddDate(0, 0, 30), Reason: "kiosk", GrantedBy: "alice", GrantedAt: at.AddDate(0, 0, -1)}},
		ExceptionsTotal: 1,
	}
}

// RunEvidence runs the conformance suite of storage.EvidenceStore.
func RunEvidence(t *testing.T, newStore func(t *testing.T) storage.EvidenceStore) {
	t.Run("ReplaceAndRead", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		if got, err := s.EvidenceDays(ctx, "2026-01-01", "2026-12-31"); err != nil || len(got) != 0 {
			t.Fatalf("empty store: %v %v", got, err)
		}
		d1, d2, d3 := evidenceDay("2026-03-02", 4), evidenceDay("2026-03-03", 6), evidenceDay("2026-03-05", 8)
		for _, d := range []storage.EvidenceDay{d3, d1, d2} {
			if err := s.PutEvidenceDay(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := s.EvidenceDays(ctx, "2026-03-01", "2026-03-31"); err != nil || !reflect.DeepEqual(got, []storage.EvidenceDay{d1, d2, d3}) {
			t.Fatalf("days = %+v, %v", got, err)
		}
		// Both ends are included.
		if got, err := s.EvidenceDays(ctx, "2026-03-03", "2026-03-05"); err != nil || !reflect.DeepEqual(got, []storage.EvidenceDay{d2, d3}) {
			t.Fatalf("days 03-03..03-05 = %+v, %v", got, err)
		}
		// Writing a day again (a later snapshot, another leader) replaces it.
		again := evidenceDay("2026-03-03", 7)
		again.TakenAt = again.TakenAt.Add(11 * time.Hour)
		if err := s.PutEvidenceDay(ctx, again); err != nil {
			t.Fatal(err)
		}
		if got, err := s.EvidenceDays(ctx, "2026-03-03", "2026-03-03"); err != nil || !reflect.DeepEqual(got, []storage.EvidenceDay{again}) {
			t.Fatalf("after rewrite = %+v, %v", got, err)
		}
	})
	t.Run("BadInputChangesNothing", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		good := evidenceDay("2026-03-02", 4)
		if err := s.PutEvidenceDay(ctx, good); err != nil {
			t.Fatal(err)
		}
		bad := map[string]func(d *storage.EvidenceDay){
			"malformed day":   func(d *storage.EvidenceDay) { d.Day = "2026-3-2" },
			"taken other day": func(d *storage.EvidenceDay) { d.TakenAt = d.TakenAt.Add(24 * time.Hour) },
			"group twice":     func(d *storage.EvidenceDay) { d.Rows[1].GroupID = "" },
			"more compliant":  func(d *storage.EvidenceDay) { d.Rows[0].Compliant = 11 },
			"more on time":    func(d *storage.EvidenceDay) { d.Rows[0].OnTime = 5 },
			"negative time":   func(d *storage.EvidenceDay) { d.Rows[0].FromNoticeP90 = -1 },
			"too many rows":   func(d *storage.EvidenceDay) { d.Rows = make([]storage.EvidenceRow, storage.MaxEvidenceRows+1) },
			"patch days down": func(d *storage.EvidenceDay) { d.Rows[0].Releases[0].PatchedAfter = [][2]int{{3, 1}, {1, 1}} },
			"patched > required": func(d *storage.EvidenceDay) {
				d.Rows[0].Releases[0].PatchedAfter = [][2]int{{1, 10}}
			},
			"exceptions over total": func(d *storage.EvidenceDay) { d.ExceptionsTotal = 0 },
			"exception without ID":  func(d *storage.EvidenceDay) { d.Exceptions[0].ID = "" },
		}
		for name, mut := range bad {
			d := evidenceDay("2026-03-02", 9)
			mut(&d)
			if err := s.PutEvidenceDay(ctx, d); err == nil {
				t.Errorf("%s: accepted", name)
			}
		}
		if got, err := s.EvidenceDays(ctx, "2000-01-01", "2100-01-01"); err != nil || !reflect.DeepEqual(got, []storage.EvidenceDay{good}) {
			t.Fatalf("after refused writes = %+v, %v", got, err)
		}
		for _, r := range [][2]string{{"yesterday", "2026-03-02"}, {"2026-03-02", "2026-02-30"}, {"2026-03-03", "2026-03-02"}} {
			if _, err := s.EvidenceDays(ctx, r[0], r[1]); err == nil {
				t.Errorf("range %v accepted", r)
			}
		}
	})
	t.Run("Retention", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		first := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		for _, d := range []time.Time{first, first.AddDate(0, 0, 1), first.AddDate(0, 0, storage.MaxEvidenceDays+1)} {
			if err := s.PutEvidenceDay(ctx, evidenceDay(d.Format(time.DateOnly), 5)); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.EvidenceDays(ctx, "2000-01-01", "2100-01-01")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Day != first.AddDate(0, 0, 1).Format(time.DateOnly) {
			t.Fatalf("kept %d days from %v; want the first dropped", len(got), got[0].Day)
		}
	})
}

// EvidenceStatesStore keeps update states and pages them for the evidence.
type EvidenceStatesStore interface {
	scheduler.StateStore
	scheduler.EvidenceStateReader
}

// RunEvidenceStates runs the conformance suite of
// scheduler.EvidenceStateReader: pages in ID order after a key, with the
// fields the evidence reads equal to the stored state's.
func RunEvidenceStates(t *testing.T, newStore func(t *testing.T) EvidenceStatesStore) {
	s := newStore(t)
	ctx := t.Context()
	at := time.Date(2026, 3, 20, 17, 0, 0, 0, time.UTC)
	full := &scheduler.State{DeviceID: "MAC-B", GroupID: "pilot", Phase: softwareupdate.PhaseCompliant, Target: "15.2",
		Deadline: at, Reason: "compliant", Facts: scheduler.Facts{OSVersion: "15.2", Enabled: true},
		PatchedTarget: "15.2", PatchedAt: at.Add(-time.Hour), PatchedNotice: at.Add(-5 * 24 * time.Hour), PatchedDeadline: at}
	notified := &scheduler.State{DeviceID: "MAC-A", GroupID: "default", Phase: softwareupdate.PhaseNotify, Target: "15.2",
		Deadline: at, NotifiedAt: at.Add(-2 * 24 * time.Hour), PatchedTarget: "15.1", PatchedAt: at.AddDate(0, -3, 0)}
	bare := &scheduler.State{DeviceID: "MAC-C", GroupID: "default", Phase: softwareupdate.PhaseUnmanaged}
	if err := s.Commit(ctx, []scheduler.Commit{{State: full}, {State: notified}, {State: bare}}, at); err != nil {
		t.Fatal(err)
	}
	if got, err := s.EvidenceStates(ctx, "", 10); err != nil || len(got) != 3 {
		t.Fatalf("every state: %d, %v", len(got), err)
	}
	project := func(st *scheduler.State) scheduler.State {
		return scheduler.State{DeviceID: st.DeviceID, GroupID: st.GroupID, Phase: st.Phase, Target: st.Target, Deadline: st.Deadline,
			NotifiedAt: st.NotifiedAt, PatchedTarget: st.PatchedTarget, PatchedAt: st.PatchedAt, PatchedNotice: st.PatchedNotice, PatchedDeadline: st.PatchedDeadline}
	}
	var got []scheduler.State
	for after := ""; ; {
		page, err := s.EvidenceStates(ctx, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range page {
			got = append(got, project(st))
		}
		if len(page) < 2 {
			break
		}
		after = page[len(page)-1].DeviceID
	}
	want := []scheduler.State{project(notified), project(full), project(bare)}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("pages\n got %+v\nwant %+v", got, want)
	}
}
