package storagetest

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// ManagedOSStore is what RunManagedOS tests: the Managed OS store plus the
// enrollment and queue side its commits write into.
type ManagedOSStore interface {
	storage.All
	scheduler.Store
}

// RunManagedOS runs the Managed OS conformance suite (groups, policies,
// exceptions, update states with their due index and history, audit log).
// newStore must return an empty store; the suite closes it.
func RunManagedOS(t *testing.T, newStore func(t *testing.T) ManagedOSStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s ManagedOSStore)
	}{
		{"Groups", testMSGroups},
		{"Policies", testMSPolicies},
		{"PolicyCalendar", testMSPolicyCalendar},
		{"Exceptions", testMSExceptions},
		{"CommitAndDueIndex", testMSCommit},
		{"CommitConflict", testMSConflict},
		{"CommitEnqueuesAtomically", testMSCommitCommands},
		{"History", testMSHistory},
		{"StateIDsAndUnevaluated", testMSStateIDs},
		{"Audit", testMSAudit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

func audit(t *testing.T, action, subject string, before, after any) *scheduler.AuditEntry {
	t.Helper()
	a, err := scheduler.NewAuditEntry(t0, "admin@example.com", action, subject, before, after)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func groupIDs(gs []scheduler.Group) []string {
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = g.ID
	}
	return out
}

func testMSGroups(t *testing.T, s ManagedOSStore) {
	ctx := context.Background()
	gs, err := s.Groups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if have, want := groupIDs(gs), []string{scheduler.DefaultGroupID}; !slices.Equal(have, want) {
		t.Fatalf("empty store groups = %v, want %v", have, want)
	}
	for _, bad := range []string{"", "Upper", "-lead", "with space", string(make([]byte, 65))} {
		if err := s.PutGroup(ctx, scheduler.Group{ID: bad}, nil); !errors.Is(err, scheduler.ErrInvalid) {
			t.Errorf("PutGroup(%q) err = %v, want ErrInvalid", bad, err)
		}
	}
	for _, g := range []scheduler.Group{{ID: "pilot", Name: "Pilot"}, {ID: "broad", Name: "Broad"}} {
		if err := s.PutGroup(ctx, g, audit(t, "group.create", g.ID, nil, g)); err != nil {
			t.Fatal(err)
		}
	}
	gs, _ = s.Groups(ctx)
	if have, want := groupIDs(gs), []string{"broad", "default", "pilot"}; !slices.Equal(have, want) {
		t.Errorf("groups = %v, want %v", have, want)
	}
	if err := s.AssignDevices(ctx, "nope", []string{"A"}, nil); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("assign to unknown group err = %v, want ErrNotFound", err)
	}
	if err := s.AssignDevices(ctx, "pilot", []string{"A", "B"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.AssignDevices(ctx, "broad", []string{"C"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.AssignDevices(ctx, scheduler.DefaultGroupID, []string{"B"}, nil); err != nil {
		t.Fatal(err)
	}
	have, err := s.GroupsOf(ctx, []string{"A", "B", "C", "unknown"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"pilot", "default", "broad", "default"}; !slices.Equal(have, want) {
		t.Errorf("GroupsOf = %v, want %v", have, want)
	}
	if err := s.DeleteGroup(ctx, scheduler.DefaultGroupID, nil); !errors.Is(err, scheduler.ErrInvalid) {
		t.Errorf("delete default err = %v, want ErrInvalid", err)
	}
	if err := s.DeleteGroup(ctx, "nope", nil); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("delete unknown err = %v, want ErrNotFound", err)
	}
	if _, err := s.PutPolicy(ctx, scheduler.PolicyRecord{GroupID: "pilot", Policy: softwareupdate.Policy{Mode: softwareupdate.ModeUnmanaged}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteGroup(ctx, "pilot", nil); err != nil {
		t.Fatal(err)
	}
	have, _ = s.GroupsOf(ctx, []string{"A", "C"})
	if want := []string{"default", "broad"}; !slices.Equal(have, want) {
		t.Errorf("after delete GroupsOf = %v, want %v", have, want)
	}
	ps, _ := s.Policies(ctx)
	if len(ps) != 0 {
		t.Errorf("policy of deleted group survived: %+v", ps)
	}
}

func testMSPolicies(t *testing.T, s ManagedOSStore) {
	ctx := context.Background()
	p := softwareupdate.Policy{Mode: softwareupdate.ModeAutomatic, DelayDays: 7, TimeOfDay: "17:00", TimeZone: "Europe/Berlin"}
	if _, err := s.PutPolicy(ctx, scheduler.PolicyRecord{GroupID: "nope", Policy: p}, nil); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("policy for unknown group err = %v, want ErrNotFound", err)
	}
	for i, want := range []uint64{1, 2, 3} {
		p.DelayDays = 7 + i
		rec, err := s.PutPolicy(ctx, scheduler.PolicyRecord{GroupID: scheduler.DefaultGroupID, Policy: p, UpdatedAt: t0, UpdatedBy: "admin"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Revision != want {
			t.Errorf("revision = %d, want %d", rec.Revision, want)
		}
	}
	ps, err := s.Policies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || ps[0].Policy.DelayDays != 9 || ps[0].Revision != 3 || ps[0].UpdatedBy != "admin" || !ps[0].UpdatedAt.Equal(t0) {
		t.Errorf("Policies = %+v", ps)
	}
}

func testMSExceptions(t *testing.T, s ManagedOSStore) {
	ctx := context.Background()
	ex := softwareupdate.Exception{Exempt: true, Expires: t0.Add(48 * time.Hour), Reason: "travelling", GrantedBy: "admin"}
	if err := s.PutException(ctx, scheduler.ExceptionRecord{Scope: "planet", ID: "x", Exception: ex}, nil); !errors.Is(err, scheduler.ErrInvalid) {
		t.Errorf("bad scope err = %v, want ErrInvalid", err)
	}
	if err := s.PutException(ctx, scheduler.ExceptionRecord{Scope: scheduler.ScopeGroup, ID: "nope", Exception: ex}, nil); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("unknown group err = %v, want ErrNotFound", err)
	}
	for _, r := range []scheduler.ExceptionRecord{
		{Scope: scheduler.ScopeDevice, ID: "A", Exception: ex, CreatedAt: t0},
		{Scope: scheduler.ScopeGroup, ID: scheduler.DefaultGroupID, Exception: ex, CreatedAt: t0},
	} {
		if err := s.PutException(ctx, r, nil); err != nil {
			t.Fatal(err)
		}
	}
	ex.Reason = "still travelling"
	if err := s.PutException(ctx, scheduler.ExceptionRecord{Scope: scheduler.ScopeDevice, ID: "A", Exception: ex, CreatedAt: t0}, nil); err != nil {
		t.Fatal(err)
	}
	es, err := s.Exceptions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 {
		t.Fatalf("Exceptions = %+v, want 2", es)
	}
	for _, e := range es {
		if e.Scope == scheduler.ScopeDevice && (e.Exception.Reason != "still travelling" || !e.Exception.Expires.Equal(ex.Expires)) {
			t.Errorf("device exception = %+v", e)
		}
	}
	if err := s.DeleteException(ctx, scheduler.ScopeDevice, "A", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteException(ctx, scheduler.ScopeDevice, "A", nil); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("second delete err = %v, want ErrNotFound", err)
	}
	if es, _ := s.Exceptions(ctx); len(es) != 1 || es[0].Scope != scheduler.ScopeGroup {
		t.Errorf("after delete = %+v", es)
	}
}

func commitOne(t *testing.T, s ManagedOSStore, st *scheduler.State, cmds ...*mdm.Command) *scheduler.State {
	t.Helper()
	if err := s.Commit(context.Background(), []scheduler.Commit{{State: st, Commands: cmds}}, t0); err != nil {
		t.Fatalf("Commit %s: %v", st.DeviceID, err)
	}
	got, err := s.States(context.Background(), []string{st.DeviceID})
	if err != nil || got[0] == nil {
		t.Fatalf("States(%s) = %v, %v", st.DeviceID, got, err)
	}
	return got[0]
}

func testMSCommit(t *testing.T, s ManagedOSStore) {
	ctx := context.Background()
	sts, err := s.States(ctx, []string{"A"})
	if err != nil || len(sts) != 1 || sts[0] != nil {
		t.Fatalf("States of unknown = %v, %v", sts, err)
	}
	dues := map[string]time.Time{"A": t0.Add(3 * time.Hour), "B": t0.Add(time.Hour), "C": t0.Add(2 * time.Hour), "D": {}}
	for _, id := range []string{"A", "B", "C", "D"} {
		got := commitOne(t, s, &scheduler.State{DeviceID: id, Phase: softwareupdate.PhasePending, Target: "15.7.9", NextDue: dues[id], Deadline: t0.Add(240 * time.Hour)})
		if got.Rev != 1 || got.Target != "15.7.9" || !got.Deadline.Equal(t0.Add(240*time.Hour)) {
			t.Errorf("stored %s = %+v", id, got)
		}
	}
	tests := []struct {
		now   time.Time
		limit int
		want  []string
	}{
		{t0, 0, nil},
		{t0.Add(time.Hour), 0, []string{"B"}},
		{t0.Add(5 * time.Hour), 0, []string{"B", "C", "A"}},
		{t0.Add(5 * time.Hour), 2, []string{"B", "C"}},
	}
	for _, tc := range tests {
		have, err := s.DueDevices(ctx, tc.now, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(have, tc.want) {
			t.Errorf("DueDevices(+%v, %d) = %v, want %v", tc.now.Sub(t0), tc.limit, have, tc.want)
		}
	}
	// Moving B's due time re-indexes it; clearing it removes it.
	sts, _ = s.States(ctx, []string{"B", "C"})
	sts[0].NextDue = t0.Add(4 * time.Hour)
	sts[1].NextDue = time.Time{}
	if err := s.Commit(ctx, []scheduler.Commit{{State: sts[0]}, {State: sts[1]}}, t0); err != nil {
		t.Fatal(err)
	}
	have, _ := s.DueDevices(ctx, t0.Add(5*time.Hour), 0)
	if want := []string{"A", "B"}; !slices.Equal(have, want) {
		t.Errorf("after re-index DueDevices = %v, want %v", have, want)
	}
	if sts, _ := s.States(ctx, []string{"B"}); sts[0].Rev != 2 {
		t.Errorf("B rev = %d, want 2", sts[0].Rev)
	}
}

func testMSConflict(t *testing.T, s ManagedOSStore) {
	ctx := context.Background()
	commitOne(t, s, &scheduler.State{DeviceID: "A", Phase: softwareupdate.PhasePending})
	stale := &scheduler.State{DeviceID: "A", Rev: 0, Phase: softwareupdate.PhaseNotify}
	fresh := &scheduler.State{DeviceID: "B", Phase: softwareupdate.PhaseNotify, NextDue: t0}
	err := s.Commit(ctx, []scheduler.Commit{{State: fresh}, {State: stale}}, t0)
	var ce *scheduler.ConflictError
	if !errors.As(err, &ce) || !errors.Is(err, scheduler.ErrConflict) || !slices.Equal(ce.IDs, []string{"A"}) {
		t.Fatalf("stale commit err = %v, want conflict on A", err)
	}
	sts, _ := s.States(ctx, []string{"A", "B"})
	if sts[0].Phase != softwareupdate.PhasePending || sts[1] != nil {
		t.Errorf("a refused batch wrote something: %+v %+v", sts[0], sts[1])
	}
	if due, _ := s.DueDevices(ctx, t0, 0); len(due) != 0 {
		t.Errorf("a refused batch indexed %v", due)
	}
}

func testMSCommitCommands(t *testing.T, s ManagedOSStore) {
	ctx := context.Background()
	enroll(t, s, "AAA-1", "cert-a")
	scan := cmd(t, "ScheduleOSUpdateScan")
	avail := cmd(t, "AvailableOSUpdates")
	commitOne(t, s, &scheduler.State{DeviceID: "AAA-1", Step: "scan", StepCommand: avail.UUID}, scan, avail)
	recs, err := s.Commands(ctx, "AAA-1")
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, r := range recs {
		types = append(types, r.RequestType)
	}
	if want := []string{"ScheduleOSUpdateScan", "AvailableOSUpdates"}; !slices.Equal(types, want) {
		t.Errorf("queued = %v, want %v", types, want)
	}
	// A command for an unknown device fails the whole commit.
	err = s.Commit(ctx, []scheduler.Commit{
		{State: &scheduler.State{DeviceID: "AAA-1", Rev: 1, Step: "download"}, Commands: []*mdm.Command{cmd(t, "ScheduleOSUpdate")}},
		{State: &scheduler.State{DeviceID: "GHOST"}, Commands: []*mdm.Command{cmd(t, "ScheduleOSUpdate")}},
	}, t0)
	if !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("commit for unknown device err = %v, want ErrNotFound", err)
	}
	sts, _ := s.States(ctx, []string{"AAA-1", "GHOST"})
	if sts[0].Step != "scan" || sts[1] != nil {
		t.Errorf("failed commit changed states: %+v %+v", sts[0], sts[1])
	}
	if recs, _ := s.Commands(ctx, "AAA-1"); len(recs) != 2 {
		t.Errorf("failed commit queued %d commands, want the 2 from before", len(recs))
	}
}

func testMSHistory(t *testing.T, s ManagedOSStore) {
	ctx := context.Background()
	var hist []scheduler.Transition
	for i, ph := range []softwareupdate.Phase{softwareupdate.PhasePending, softwareupdate.PhaseNotify, softwareupdate.PhaseCountdown, softwareupdate.PhaseEnforce} {
		hist = append(hist, scheduler.Transition{At: t0.Add(time.Duration(i) * time.Hour), Kind: scheduler.EventPhase, To: ph, Reason: "reason " + string(ph)})
	}
	st := &scheduler.State{DeviceID: "A"}
	if err := s.Commit(ctx, []scheduler.Commit{{State: st, History: hist[:2]}}, t0); err != nil {
		t.Fatal(err)
	}
	st.Rev = 1
	if err := s.Commit(ctx, []scheduler.Commit{{State: st, History: hist[2:]}, {State: &scheduler.State{DeviceID: "AB"}, History: hist[:1]}}, t0); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		id    string
		limit int
		want  []softwareupdate.Phase
	}{
		{"A", 0, []softwareupdate.Phase{"pending", "notify", "countdown", "enforce"}},
		{"A", 2, []softwareupdate.Phase{"countdown", "enforce"}},
		{"AB", 0, []softwareupdate.Phase{"pending"}},
		{"nobody", 0, nil},
	}
	for _, tc := range tests {
		h, err := s.History(ctx, tc.id, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		var have []softwareupdate.Phase
		for _, e := range h {
			have = append(have, e.To)
		}
		if !slices.Equal(have, tc.want) {
			t.Errorf("History(%s, %d) = %v, want %v", tc.id, tc.limit, have, tc.want)
		}
	}
}

func testMSAudit(t *testing.T, s ManagedOSStore) {
	ctx := context.Background()
	before := softwareupdate.Policy{Mode: softwareupdate.ModeUnmanaged}
	after := softwareupdate.Policy{Mode: softwareupdate.ModeAutomatic, DelayDays: 7, TimeOfDay: "17:00", TimeZone: "UTC"}
	if _, err := s.PutPolicy(ctx, scheduler.PolicyRecord{GroupID: scheduler.DefaultGroupID, Policy: after}, audit(t, "policy.set", "default", before, after)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutGroup(ctx, scheduler.Group{ID: "pilot"}, audit(t, "group.create", "pilot", nil, scheduler.Group{ID: "pilot"})); err != nil {
		t.Fatal(err)
	}
	if err := s.AssignDevices(ctx, "pilot", []string{"A"}, audit(t, "group.assign", "pilot", nil, []string{"A"})); err != nil {
		t.Fatal(err)
	}
	all, err := s.Audit(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for i, a := range all {
		actions = append(actions, a.Action)
		if a.Seq == 0 || (i > 0 && a.Seq <= all[i-1].Seq) || a.Actor != "admin@example.com" || !a.At.Equal(t0) {
			t.Errorf("entry %d = %+v", i, a)
		}
	}
	if want := []string{"policy.set", "group.create", "group.assign"}; !slices.Equal(actions, want) {
		t.Fatalf("audit actions = %v, want %v", actions, want)
	}
	var gotBefore, gotAfter softwareupdate.Policy
	if err := json.Unmarshal(all[0].Before, &gotBefore); err != nil || gotBefore != before {
		t.Errorf("before = %s (%v)", all[0].Before, err)
	}
	if err := json.Unmarshal(all[0].After, &gotAfter); err != nil || gotAfter != after {
		t.Errorf("after = %s (%v)", all[0].After, err)
	}
	if all[1].Before != nil {
		t.Errorf("create has before = %s", all[1].Before)
	}
	page, _ := s.Audit(ctx, all[0].Seq, 1)
	if len(page) != 1 || page[0].Action != "group.create" {
		t.Errorf("Audit(after first, 1) = %+v", page)
	}
}

func testMSStateIDs(t *testing.T, s ManagedOSStore) {
	ctx := context.Background()
	for _, id := range []string{"D1", "D2", "D3", "D4"} {
		enroll(t, s, id+"-udid", "cert-"+id)
	}
	// A user channel is never listed as unevaluated.
	if _, err := s.TokenUpdate(ctx, "D1-udid:user", &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: "D1-udid", UserID: "user"},
		MessageType: mdm.TokenUpdate, Topic: "t", Token: []byte("tok"), PushMagic: "m"}, nil, t0); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"D2-udid", "D4-udid"} {
		commitOne(t, s, &scheduler.State{DeviceID: id})
	}
	tests := []struct {
		name  string
		fn    func(after string, limit int) ([]string, error)
		after string
		limit int
		want  []string
	}{
		{"states", func(a string, l int) ([]string, error) { return s.StateIDs(ctx, a, l) }, "", 0, []string{"D2-udid", "D4-udid"}},
		{"states after", func(a string, l int) ([]string, error) { return s.StateIDs(ctx, a, l) }, "D2-udid", 0, []string{"D4-udid"}},
		{"states limit", func(a string, l int) ([]string, error) { return s.StateIDs(ctx, a, l) }, "", 1, []string{"D2-udid"}},
		{"unevaluated", func(a string, l int) ([]string, error) { return s.Unevaluated(ctx, a, l) }, "", 0, []string{"D1-udid", "D3-udid"}},
		{"unevaluated after", func(a string, l int) ([]string, error) { return s.Unevaluated(ctx, a, l) }, "D1-udid", 0, []string{"D3-udid"}},
		{"unevaluated limit", func(a string, l int) ([]string, error) { return s.Unevaluated(ctx, a, l) }, "", 1, []string{"D1-udid"}},
	}
	for _, tc := range tests {
		have, err := tc.fn(tc.after, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(have, tc.want) {
			t.Errorf("%s(%q, %d) = %v, want %v", tc.name, tc.after, tc.limit, have, tc.want)
		}
	}
}
