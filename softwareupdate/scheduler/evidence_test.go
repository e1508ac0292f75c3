package scheduler_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// TestEvidenceTimeline drives five Macs through three weeks of passes on
// the fake clock, records the evidence at the end of four days and checks
// the figures against ones computed by hand. 15.2 was posted 2026-02-20;
// it is required by D = 2026-03-20 17:00 UTC, so the notice starts at
// 03-15 17:00 and the forced install at 17:30.
//
//	early   reaches 15.2 on 03-05 12:00, before its notice
//	prompt  reaches it on 03-17 09:00, notified 03-15 17:00
//	late    reaches it on 03-22 10:00, after its deadline
//	never   stays on 15.1
//	kiosk   is exempt from 03-10 to 04-30 (granted by cio@example.com)
func TestEvidenceTimeline(t *testing.T) {
	ctx := t.Context()
	u := newUnit(t, utcAt(2026, 3, 2, 9, 0))
	if _, err := u.mgr.SetPolicy(ctx, "admin", scheduler.DefaultGroupID, softwareupdate.Policy{Mode: softwareupdate.ModeManual,
		MinimumVersion: "15.2", Date: "2026-03-20", TimeOfDay: "17:00", TimeZone: "UTC"}); err != nil {
		t.Fatal(err)
	}
	macs := []string{"early", "prompt", "late", "never", "kiosk"}
	for _, id := range macs {
		u.addMac(id, "15.1", "J413AP", true)
	}
	rec := scheduler.NewEvidenceRecorder(u.store, testCatalog(t), u.clk, u.store)
	at := func(when time.Time) {
		t.Helper()
		u.clk.Set(when)
		u.pass()
	}
	patch := func(id string, when time.Time) {
		t.Helper()
		u.clk.Set(when)
		u.setInventory(id, mdm.Inventory{OSVersion: "15.2", BuildVersion: "24C101", ProductName: "Mac14,2", SoftwareUpdateDeviceID: "J413AP", IsSupervised: true})
		u.pass()
		if st := u.state(id); st.Phase != softwareupdate.PhaseCompliant || !st.PatchedAt.Equal(when) || st.PatchedTarget != "15.2" {
			t.Fatalf("%s after its update: %+v", id, st)
		}
	}
	record := func(when time.Time) {
		t.Helper()
		u.clk.Set(when)
		u.pass()
		if _, err := rec.Record(ctx); err != nil {
			t.Fatal(err)
		}
	}
	D := utcAt(2026, 3, 20, 17, 0)
	at(utcAt(2026, 3, 2, 9, 0))
	patch("early", utcAt(2026, 3, 5, 12, 0))
	record(utcAt(2026, 3, 5, 23, 0))
	u.clk.Set(utcAt(2026, 3, 10, 8, 0))
	if _, err := u.mgr.SetException(ctx, "cio@example.com", scheduler.ScopeDevice, "kiosk", softwareupdate.Exception{
		Exempt: true, Expires: utcAt(2026, 4, 30, 0, 0), Reason: "lobby kiosk, vendor certifies 15.2 in May"}); err != nil {
		t.Fatal(err)
	}
	at(utcAt(2026, 3, 10, 8, 0))
	at(D.Add(-softwareupdate.NotifyWindow)) // 03-15 17:00: prompt, late and never are notified
	if st := u.state("prompt"); st.Phase != softwareupdate.PhaseNotify || !st.NotifiedAt.Equal(D.Add(-softwareupdate.NotifyWindow)) {
		t.Fatalf("prompt at its notice: %+v", st)
	}
	patch("prompt", utcAt(2026, 3, 17, 9, 0))
	record(utcAt(2026, 3, 17, 23, 0))
	at(D)
	at(D.Add(30 * time.Minute))
	patch("late", utcAt(2026, 3, 22, 10, 0))
	record(utcAt(2026, 3, 22, 23, 0))
	record(utcAt(2026, 3, 25, 12, 0))
	// A second recording of the same day (a restart, another leader)
	// replaces it: still one row per day.
	record(utcAt(2026, 3, 25, 12, 0))

	days, err := u.store.EvidenceDays(ctx, "2026-03-01", "2026-03-31")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range days {
		got = append(got, d.Day)
	}
	if want := []string{"2026-03-05", "2026-03-17", "2026-03-22", "2026-03-25"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("days recorded %v, want %v", got, want)
	}
	day := func(i int) storage.EvidenceRow {
		if len(days[i].Rows) != 2 || days[i].Rows[0].GroupID != "" || days[i].Rows[1].GroupID != scheduler.DefaultGroupID {
			t.Fatalf("rows of %s: %+v", days[i].Day, days[i].Rows)
		}
		fleet, group := days[i].Rows[0], days[i].Rows[1]
		group.GroupID = ""
		if !reflect.DeepEqual(fleet, group) {
			t.Fatalf("%s: the fleet's row %+v differs from its only group's %+v", days[i].Day, fleet, group)
		}
		return fleet
	}
	const h, d = 3600, 86400
	posted := time.Date(2026, 2, 20, 0, 0, 0, 0, time.UTC)
	for i, want := range []storage.EvidenceRow{
		// 03-05: early patched 13 d 12 h after the release, before any notice.
		{Managed: 5, Compliant: 1, Patched: 1, FromReleaseMedian: 13*d + 12*h, FromReleaseP90: 13*d + 12*h,
			Releases: []storage.EvidenceRelease{{Version: "15.2", Posted: posted, Required: 5, PatchedAfter: [][2]int{{13, 1}}}}},
		// 03-17: prompt patched 1 d 16 h after its notice; kiosk is exempt
		// (no longer required); no deadline has passed yet.
		{Managed: 5, Compliant: 2, Patched: 2, FromReleaseMedian: 13*d + 12*h, FromReleaseP90: 25*d + 9*h,
			FromNoticeMedian: 0, FromNoticeP90: 1*d + 16*h, Exceptions: 1,
			Releases: []storage.EvidenceRelease{{Version: "15.2", Posted: posted, Required: 4, PatchedAfter: [][2]int{{13, 1}, {25, 1}}}}},
		// 03-22: late patched 2 days after D; never is past it.
		{Managed: 5, Compliant: 3, DeadlinePassed: 4, OnTime: 2, Patched: 3, FromReleaseMedian: 25*d + 9*h, FromReleaseP90: 30*d + 10*h,
			FromNoticeMedian: 1*d + 16*h, FromNoticeP90: 6*d + 17*h, Exceptions: 1,
			Releases: []storage.EvidenceRelease{{Version: "15.2", Posted: posted, Required: 4, PatchedAfter: [][2]int{{13, 1}, {25, 1}, {30, 1}}}}},
	} {
		if have := day(i); !reflect.DeepEqual(have, want) {
			t.Errorf("%s:\nhave %+v\nwant %+v", days[i].Day, have, want)
		}
	}
	if have, want := day(3), day(2); !reflect.DeepEqual(have, want) {
		t.Errorf("03-25 = %+v, want 03-22's figures (nothing changed)", have)
	}
	if len(days[0].Exceptions) != 0 {
		t.Errorf("exceptions on 03-05: %+v", days[0].Exceptions)
	}
	wantExc := storage.EvidenceException{Scope: "device", ID: "kiosk", GroupID: scheduler.DefaultGroupID, Exempt: true,
		Expires: utcAt(2026, 4, 30, 0, 0), Reason: "lobby kiosk, vendor certifies 15.2 in May", GrantedBy: "cio@example.com", GrantedAt: utcAt(2026, 3, 10, 8, 0)}
	if e := days[3].Exceptions; len(e) != 1 || e[0] != wantExc || days[3].ExceptionsTotal != 1 {
		t.Errorf("exceptions on 03-25 = %+v", e)
	}

	// The auditor's question: who was patched within 14 days of release?
	q := scheduler.EvidenceQuery{From: "2026-02-15", To: "2026-03-25", WithinDays: 14}
	if err := q.Check(u.clk.Now()); err != nil {
		t.Fatal(err)
	}
	rep := scheduler.BuildEvidenceReport(q, days)
	wantRel := []scheduler.ReleaseWindow{{Version: "15.2", Posted: posted, InPeriod: true, Day: "2026-03-25", Required: 4, Patched: 3, Within: 1, Percent: 25}}
	if rep.Days != 4 || !reflect.DeepEqual(rep.Releases, wantRel) || rep.Summary.Required != 4 || rep.Summary.Within != 1 || rep.Summary.Percent != 25 {
		t.Fatalf("report = %+v %+v", rep.Summary, rep.Releases)
	}
	if want := "25 % of Macs patched within 14 days of release between 2026-02-15 and 2026-03-25 (1 of 4; releases 15.2); 1 exceptions in force"; rep.Summary.Text != want {
		t.Errorf("summary %q\n   want %q", rep.Summary.Text, want)
	}
	if len(rep.Exceptions) != 1 || rep.Exceptions[0].FirstDay != "2026-03-17" || rep.Exceptions[0].LastDay != "2026-03-25" {
		t.Errorf("exception spans = %+v", rep.Exceptions)
	}
	if len(rep.Rows) != 8 || rep.Rows[4].Day != "2026-03-22" || rep.Rows[4].OnTimePercent != 50 || rep.Rows[4].CompliantPercent != 60 {
		t.Errorf("rows = %+v", rep.Rows)
	}
	// 26 days takes in prompt (25 d 9 h) too; a group's report has only its rows.
	q.WithinDays, q.Group = 26, scheduler.DefaultGroupID
	if rep := scheduler.BuildEvidenceReport(q, days); rep.Summary.Within != 2 || rep.Summary.Percent != 50 || len(rep.Rows) != 4 ||
		!strings.HasPrefix(rep.Summary.Text, "50 % of Macs of group default patched within 26 days") {
		t.Errorf("26-day group report = %+v", rep.Summary)
	}
	// A period in which 15.2 was not posted says so.
	q = scheduler.EvidenceQuery{From: "2026-03-01", To: "2026-03-25", WithinDays: 14}
	if rep := scheduler.BuildEvidenceReport(q, days); rep.Summary.Required != 0 || !strings.Contains(rep.Summary.Text, "No release posted") || len(rep.Releases) != 1 || rep.Releases[0].InPeriod {
		t.Errorf("March report = %+v %+v", rep.Summary, rep.Releases)
	}
}

// TestEvidenceRings: a group that is a ring of a plan names the plan and
// its position; an unmanaged Mac is left out; a Mac that moved on to a new
// target still counts for the release it patched.
func TestEvidenceRings(t *testing.T) {
	now := utcAt(2026, 3, 25, 12, 0)
	b := scheduler.NewEvidenceBuilder(now, testCatalog(t), nil, []scheduler.RingPlan{{ID: "macos", Groups: []string{"pilot", "broad"}}})
	b.Add(&scheduler.State{DeviceID: "a", GroupID: "broad", Phase: softwareupdate.PhaseNotify, Target: "15.2",
		PatchedTarget: "15.1", PatchedAt: utcAt(2025, 10, 30, 0, 0)})
	b.Add(&scheduler.State{DeviceID: "b", GroupID: "pilot", Phase: softwareupdate.PhaseUnmanaged})
	b.Add(&scheduler.State{DeviceID: "c", GroupID: "other", Phase: softwareupdate.PhaseCompliant, Target: "15.2"})
	d := b.Day()
	if len(d.Rows) != 3 {
		t.Fatalf("rows = %+v", d.Rows)
	}
	broad, other := d.Rows[1], d.Rows[2]
	if broad.GroupID != "broad" || broad.Plan != "macos" || broad.Ring != 2 || other.Plan != "" || other.Ring != 0 {
		t.Errorf("ring placement: %+v / %+v", broad, other)
	}
	want := []storage.EvidenceRelease{
		{Version: "15.2", Posted: utcAt(2026, 2, 20, 0, 0), Required: 1},
		{Version: "15.1", Posted: utcAt(2025, 10, 28, 0, 0), Required: 1, PatchedAfter: [][2]int{{2, 1}}},
	}
	if !reflect.DeepEqual(broad.Releases, want) || broad.Patched != 0 || broad.Compliant != 0 {
		t.Errorf("broad = %+v", broad)
	}
	// The Mac found compliant without a recorded patch is compliant, with no
	// time to patch.
	if other.Compliant != 1 || other.Patched != 0 || len(other.Releases) != 0 {
		t.Errorf("other = %+v", other)
	}
	if fleet := d.Rows[0]; fleet.Managed != 2 {
		t.Errorf("fleet counts %d managed, want 2 (the unmanaged Mac left out)", fleet.Managed)
	}
}

// TestEvidenceQueryCheck: bad dates, a reversed range, a range beyond the
// days kept, a future end and a bad window are refused.
func TestEvidenceQueryCheck(t *testing.T) {
	now := utcAt(2026, 12, 7, 10, 0)
	for _, tc := range []struct {
		q    scheduler.EvidenceQuery
		want string
	}{
		{scheduler.EvidenceQuery{From: "2026-13-01", To: "2026-12-01", WithinDays: 14}, "from"},
		{scheduler.EvidenceQuery{From: "2026-10-01", To: "1 Dec", WithinDays: 14}, "to"},
		{scheduler.EvidenceQuery{From: "2026-12-02", To: "2026-12-01", WithinDays: 14}, "after to"},
		{scheduler.EvidenceQuery{From: "2026-12-01", To: "2026-12-08", WithinDays: 14}, "after today"},
		{scheduler.EvidenceQuery{From: "2025-01-01", To: "2026-12-01", WithinDays: 14}, "evidence kept"},
		{scheduler.EvidenceQuery{From: "2026-10-01", To: "2026-12-01", WithinDays: 0}, "patch window"},
		{scheduler.EvidenceQuery{From: "2026-10-01", To: "2026-12-01", WithinDays: 14, Group: "Bad Group"}, "group"},
	} {
		err := tc.q.Check(now)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, scheduler.ErrInvalid) {
			t.Errorf("%+v: %v, want an invalid-input error about %q", tc.q, err, tc.want)
		}
	}
	if err := (scheduler.EvidenceQuery{From: "2026-10-01", To: "2026-12-07", WithinDays: 14}).Check(now); err != nil {
		t.Errorf("Q4 to today: %v", err)
	}
}
