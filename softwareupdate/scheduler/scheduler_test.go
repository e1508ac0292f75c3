package scheduler_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/legacy"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/bolt"
)

// unit is the scheduler on a real bbolt file without HTTP: devices are
// written straight into the store.
type unit struct {
	t     testing.TB
	clk   *clock.Fake
	store *bolt.Store
	sched *scheduler.Scheduler
	mgr   *scheduler.Manager
}

func newUnit(t testing.TB, start time.Time) *unit {
	t.Helper()
	store, err := bolt.Open(filepath.Join(t.TempDir(), "sundial.db"), &bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	u := &unit{t: t, clk: clock.NewFake(start), store: store}
	u.useStore(store)
	return u
}

func (u *unit) addMac(id, os, board string, supervised bool) {
	u.t.Helper()
	ctx := context.Background()
	now := u.clk.Now()
	auth := &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: id}, MessageType: mdm.Authenticate, Topic: "t", OSVersion: os}
	if err := u.store.Authenticate(ctx, id, auth, "cert-"+id, now); err != nil {
		u.t.Fatal(err)
	}
	tok := &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: id}, MessageType: mdm.TokenUpdate, Topic: "t", Token: []byte("token"), PushMagic: "magic"}
	if _, err := u.store.TokenUpdate(ctx, id, tok, nil, now); err != nil {
		u.t.Fatal(err)
	}
	inv := &mdm.Inventory{OSVersion: os, BuildVersion: "B", ProductName: "Mac14,2", SoftwareUpdateDeviceID: board, IsSupervised: supervised}
	if err := u.store.UpdateInventory(ctx, id, inv, now); err != nil {
		u.t.Fatal(err)
	}
	u.sched.Touch(id)
}

// useStore rebuilds the scheduler and Manager over store (a wrapper of
// u.store that watches commits). Its Macs never answer, so they would all
// look offline at their deadline: the offline grace is off unless opts
// set it (the stack's timeline tests it with Macs that answer).
func (u *unit) useStore(store scheduler.Store, opts ...scheduler.Option) {
	opts = append([]scheduler.Option{scheduler.WithEnforcer(softwareupdate.PathLegacy, legacy.New(legacy.Config{})), scheduler.WithOfflineGrace(0)}, opts...)
	u.sched = scheduler.New(store, u.store, testCatalog(u.t), u.clk, opts...)
	u.mgr = scheduler.NewManager(u.store, testCatalog(u.t), u.clk, u.sched)
}

// runLoop starts Run; the returned func stops it and waits for it.
func (u *unit) runLoop(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); u.sched.Run(ctx) }()
	return func() { cancel(); <-done }
}

func (u *unit) pass() scheduler.Stats {
	u.t.Helper()
	st, err := u.sched.RunOnce(context.Background())
	if err != nil {
		u.t.Fatal(err)
	}
	return st
}

func (u *unit) state(id string) *scheduler.State {
	u.t.Helper()
	sts, err := u.store.States(context.Background(), []string{id})
	if err != nil || sts[0] == nil {
		u.t.Fatalf("state %s: %v %v", id, sts, err)
	}
	return sts[0]
}

// twoRings sets the default group's policy (15.2 by 2026-03-20 17:00 UTC)
// and creates the group "late" with the same policy lateDays later.
func (u *unit) twoRings(lateDays int) {
	u.t.Helper()
	ctx := context.Background()
	base := softwareupdate.Policy{Mode: softwareupdate.ModeManual, MinimumVersion: "15.2", Date: "2026-03-20", TimeOfDay: "17:00", TimeZone: "UTC"}
	if _, err := u.mgr.SetPolicy(ctx, "admin", scheduler.DefaultGroupID, base); err != nil {
		u.t.Fatal(err)
	}
	if _, err := u.mgr.CreateGroup(ctx, "admin", "late", "Late ring"); err != nil {
		u.t.Fatal(err)
	}
	late := base
	late.RingOffsetDays = lateDays
	if _, err := u.mgr.SetPolicy(ctx, "admin", "late", late); err != nil {
		u.t.Fatal(err)
	}
}

func utcAt(y int, m time.Month, d, hh, mm int) time.Time {
	return time.Date(y, m, d, hh, mm, 0, 0, time.UTC)
}

// TestMinimumNotice: automatic mode when Apple posted long ago gives a
// newly non-compliant Mac the minimum notice (nobody starts in a
// countdown), and a policy change gives fresh notice again.
func TestMinimumNotice(t *testing.T) {
	ctx := t.Context()
	u := newUnit(t, utcAt(2026, 3, 2, 9, 0))
	if _, err := u.mgr.SetPolicy(ctx, "admin", scheduler.DefaultGroupID, softwareupdate.Policy{
		Mode: softwareupdate.ModeAutomatic, DelayDays: 1, TimeOfDay: "17:00", TimeZone: "UTC"}); err != nil {
		t.Fatal(err)
	}
	u.addMac("A", "15.1", "J413AP", true)
	u.pass()
	st := u.state("A")
	// 15.2 was posted 2026-02-20 and due 02-21; the Mac gets 5 days from
	// first sight (03-02 09:00), at the policy's 17:00.
	if want := utcAt(2026, 3, 7, 17, 0); st.Phase != softwareupdate.PhasePending || st.Target != "15.2" || !st.Deadline.Equal(want) {
		t.Fatalf("state = phase %s target %s deadline %v, want pending 15.2 %v", st.Phase, st.Target, st.Deadline, want)
	}
	u.clk.Set(utcAt(2026, 3, 4, 10, 0))
	u.pass()
	if st := u.state("A"); st.Phase != softwareupdate.PhaseNotify {
		t.Fatalf("phase at 03-04 = %s", st.Phase)
	}
	if _, err := u.mgr.SetPolicy(ctx, "admin", scheduler.DefaultGroupID, softwareupdate.Policy{
		Mode: softwareupdate.ModeAutomatic, DelayDays: 2, TimeOfDay: "17:00", TimeZone: "UTC"}); err != nil {
		t.Fatal(err)
	}
	u.pass()
	st = u.state("A")
	if want := utcAt(2026, 3, 9, 17, 0); !st.Deadline.Equal(want) || st.Phase != softwareupdate.PhasePending || !st.FirstNonCompliant.Equal(u.clk.Now()) {
		t.Fatalf("after policy change: phase %s deadline %v first %v, want pending %v", st.Phase, st.Deadline, st.FirstNonCompliant, want)
	}
}

// TestExceptionRejoinsWithFreshNotice: an exempt Mac is left alone until the
// exemption expires, then rejoins with the minimum notice from the expiry.
func TestExceptionRejoinsWithFreshNotice(t *testing.T) {
	ctx := t.Context()
	u := newUnit(t, utcAt(2026, 3, 2, 9, 0))
	if _, err := u.mgr.SetPolicy(ctx, "admin", scheduler.DefaultGroupID, softwareupdate.Policy{
		Mode: softwareupdate.ModeManual, MinimumVersion: "15.2", Date: "2026-03-05", TimeOfDay: "12:00", TimeZone: "UTC", MinimumNoticeDays: 1}); err != nil {
		t.Fatal(err)
	}
	u.addMac("A", "15.1", "J413AP", true)
	if _, err := u.mgr.SetException(ctx, "admin", scheduler.ScopeDevice, "A", softwareupdate.Exception{
		Exempt: true, Expires: utcAt(2026, 3, 10, 0, 0), Reason: "travelling"}); err != nil {
		t.Fatal(err)
	}
	u.pass()
	if st := u.state("A"); st.Phase != softwareupdate.PhaseExempt || !st.NextDue.Equal(utcAt(2026, 3, 10, 0, 0)) {
		t.Fatalf("exempt state = %s next %v", st.Phase, st.NextDue)
	}
	u.clk.Set(utcAt(2026, 3, 10, 0, 0))
	u.pass()
	if st := u.state("A"); st.Phase != softwareupdate.PhaseNotify || !st.Deadline.Equal(utcAt(2026, 3, 11, 12, 0)) {
		t.Fatalf("after expiry: %s deadline %v, want notify 03-11 12:00", st.Phase, st.Deadline)
	}
	rep, err := u.mgr.Device(ctx, "A", 0)
	if err != nil || rep.Exception == nil || rep.Exception.Exception.GrantedBy != "admin" {
		t.Fatalf("report = %+v, %v", rep, err)
	}
}

// TestManagerValidation: bad input gives a clear error and saves nothing,
// not even an audit entry; good input is audited with before and after.
func TestManagerValidation(t *testing.T) {
	ctx := t.Context()
	u := newUnit(t, utcAt(2026, 3, 2, 9, 0))
	good := softwareupdate.Policy{Mode: softwareupdate.ModeManual, MinimumVersion: "15.2", Date: "2026-04-01", TimeOfDay: "17:00", TimeZone: "Europe/Berlin"}
	tests := []struct {
		name   string
		change func(p *softwareupdate.Policy)
		want   error
	}{
		{"unknown version", func(p *softwareupdate.Policy) { p.MinimumVersion = "15.9" }, softwareupdate.ErrUnknownVersion},
		{"deadline in the past", func(p *softwareupdate.Policy) { p.Date = "2026-03-01" }, softwareupdate.ErrDeadlinePast},
		{"unknown zone", func(p *softwareupdate.Policy) { p.TimeZone = "Mars/Olympus" }, softwareupdate.ErrUnknownTimeZone},
		{"absurd ring offset", func(p *softwareupdate.Policy) { p.RingOffsetDays = 400 }, softwareupdate.ErrOutOfRange},
		{"negative notice", func(p *softwareupdate.Policy) { p.MinimumNoticeDays = -1 }, softwareupdate.ErrOutOfRange},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := good
			tc.change(&p)
			_, err := u.mgr.SetPolicy(ctx, "admin", scheduler.DefaultGroupID, p)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := u.mgr.SetPolicy(ctx, "admin", "no-such-group", good); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("unknown group err = %v", err)
	}
	if _, err := u.mgr.SetPolicy(ctx, "", scheduler.DefaultGroupID, good); !errors.Is(err, scheduler.ErrInvalid) {
		t.Errorf("no actor err = %v", err)
	}
	if _, err := u.mgr.Policy(ctx, scheduler.DefaultGroupID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a refused policy was saved: %v", err)
	}
	if a, _ := u.mgr.Audit(ctx, 0, 0); len(a) != 0 {
		t.Fatalf("refused changes audited: %+v", a)
	}
	if _, err := u.mgr.SetException(ctx, "admin", scheduler.ScopeDevice, "A", softwareupdate.Exception{Exempt: true, Expires: utcAt(2026, 3, 1, 0, 0), Reason: "x"}); !errors.Is(err, softwareupdate.ErrDeadlinePast) {
		t.Errorf("expired exception err = %v", err)
	}
	if _, err := u.mgr.SetPolicy(ctx, "alice", scheduler.DefaultGroupID, good); err != nil {
		t.Fatal(err)
	}
	p2 := good
	p2.Date = "2026-04-08"
	if _, err := u.mgr.SetPolicy(ctx, "bob", scheduler.DefaultGroupID, p2); err != nil {
		t.Fatal(err)
	}
	a, err := u.mgr.Audit(ctx, 0, 0)
	if err != nil || len(a) != 2 {
		t.Fatalf("audit = %+v, %v", a, err)
	}
	if a[0].Actor != "alice" || a[0].Before != nil || a[1].Actor != "bob" || string(a[1].Before) != string(a[0].After) || !a[1].At.Equal(u.clk.Now()) {
		t.Errorf("audit entries = %+v", a)
	}
}

// TestGroupsAndRings: a device moved to a group follows that group's
// policy, ring offset included.
func TestGroupsAndRings(t *testing.T) {
	ctx := t.Context()
	u := newUnit(t, utcAt(2026, 3, 2, 9, 0))
	u.twoRings(7)
	u.addMac("A", "15.1", "J413AP", true)
	u.addMac("B", "15.1", "J413AP", true)
	if err := u.mgr.AssignDevices(ctx, "admin", "late", []string{"B"}); err != nil {
		t.Fatal(err)
	}
	u.pass()
	tests := []struct {
		id    string
		group string
		want  time.Time
	}{
		{"A", scheduler.DefaultGroupID, utcAt(2026, 3, 20, 17, 0)},
		{"B", "late", utcAt(2026, 3, 27, 17, 0)},
	}
	for _, tc := range tests {
		st := u.state(tc.id)
		if st.GroupID != tc.group || !st.Deadline.Equal(tc.want) {
			t.Errorf("%s: group %s deadline %v, want %s %v", tc.id, st.GroupID, st.Deadline, tc.group, tc.want)
		}
	}
}

// TestIdleNothingDue: a pass when nothing is due evaluates nothing.
func TestIdleNothingDue(t *testing.T) {
	u := newUnit(t, utcAt(2026, 3, 2, 9, 0))
	if _, err := u.mgr.SetPolicy(t.Context(), "admin", scheduler.DefaultGroupID, softwareupdate.Policy{
		Mode: softwareupdate.ModeManual, MinimumVersion: "15.2", Date: "2026-03-20", TimeOfDay: "17:00", TimeZone: "UTC"}); err != nil {
		t.Fatal(err)
	}
	u.addMac("A", "15.1", "J413AP", true)
	if st := u.pass(); st.Evaluated == 0 {
		t.Fatal("first pass evaluated nothing")
	}
	if st := u.pass(); st.Evaluated != 0 || st.Changed != 0 {
		t.Fatalf("idle pass = %+v, want nothing", st)
	}
}

// TestClearExceptionGivesFreshNotice: an exemption cleared early does not
// throw the Mac into its (past) policy deadline.
func TestClearExceptionGivesFreshNotice(t *testing.T) {
	ctx := t.Context()
	u := newUnit(t, utcAt(2026, 3, 2, 9, 0))
	if _, err := u.mgr.SetPolicy(ctx, "admin", scheduler.DefaultGroupID, softwareupdate.Policy{
		Mode: softwareupdate.ModeManual, MinimumVersion: "15.2", Date: "2026-03-08", TimeOfDay: "12:00", TimeZone: "UTC"}); err != nil {
		t.Fatal(err)
	}
	u.addMac("A", "15.1", "J413AP", true)
	if _, err := u.mgr.SetException(ctx, "admin", scheduler.ScopeDevice, "A", softwareupdate.Exception{
		Exempt: true, Expires: utcAt(2026, 4, 1, 0, 0), Reason: "on leave"}); err != nil {
		t.Fatal(err)
	}
	u.pass()
	u.clk.Set(utcAt(2026, 3, 10, 9, 0)) // past the policy's deadline
	if err := u.mgr.ClearException(ctx, "admin", scheduler.ScopeDevice, "A"); err != nil {
		t.Fatal(err)
	}
	u.pass()
	st := u.state("A")
	// Fresh notice from 03-10 09:00: five days, at the policy's 12:00.
	if want := utcAt(2026, 3, 15, 12, 0); st.Phase != softwareupdate.PhasePending || !st.Deadline.Equal(want) {
		t.Fatalf("after clearing: %s deadline %v, want pending %v", st.Phase, st.Deadline, want)
	}
}

// TestRunTicksAndEvents: Run evaluates touched devices without waiting for
// a tick, and stops with its context.
func TestRunTicksAndEvents(t *testing.T) {
	u := newUnit(t, utcAt(2026, 3, 2, 9, 0))
	if _, err := u.mgr.SetPolicy(t.Context(), "admin", scheduler.DefaultGroupID, softwareupdate.Policy{
		Mode: softwareupdate.ModeManual, MinimumVersion: "15.2", Date: "2026-03-20", TimeOfDay: "17:00", TimeZone: "UTC"}); err != nil {
		t.Fatal(err)
	}
	stop := u.runLoop(t.Context())
	u.addMac("A", "15.1", "J413AP", true) // touches A
	deadline := time.Now().Add(5 * time.Second)
	for {
		sts, err := u.store.States(t.Context(), []string{"A"})
		if err != nil {
			t.Fatal(err)
		}
		if sts[0] != nil && sts[0].Phase == softwareupdate.PhasePending {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not evaluate the touched device")
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop()
}

// countStore counts commits.
type countStore struct {
	*bolt.Store
	mu      sync.Mutex
	commits int
	devices int
}

func (s *countStore) Commit(ctx context.Context, commits []scheduler.Commit, now time.Time) error {
	s.mu.Lock()
	s.commits++
	s.devices += len(commits)
	s.mu.Unlock()
	return s.Store.Commit(ctx, commits, now)
}

func (s *countStore) counts() (commits, devices int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commits, s.devices
}

// TestRunSettlesEvents: check-ins that arrive close together (Macs
// enrolling) share one pass and one commit, which Run starts
// DefaultSettle after the first of them; a lone check-in is still
// evaluated within DefaultSettle.
func TestRunSettlesEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := newUnit(t, utcAt(2026, 3, 2, 9, 0))
		rec := &countStore{Store: u.store}
		u.useStore(rec)
		if _, err := u.mgr.SetPolicy(t.Context(), "admin", scheduler.DefaultGroupID, softwareupdate.Policy{
			Mode: softwareupdate.ModeManual, MinimumVersion: "15.2", Date: "2026-03-20", TimeOfDay: "17:00", TimeZone: "UTC"}); err != nil {
			t.Fatal(err)
		}
		stop := u.runLoop(t.Context())
		synctest.Wait() // the first pass, at start
		commits0, _ := rec.counts()

		// Five Macs check in one after the other (each write waits for
		// bbolt's batch, 10 ms, so they take ~150 ms in all).
		var first time.Time
		for i := range 5 {
			u.addMac(fmt.Sprintf("MAC-%02d", i), "15.1", "J413AP", true) // touches it
			if i == 0 {
				first = time.Now()
			}
		}
		synctest.Wait()
		if since := time.Since(first); since >= scheduler.DefaultSettle {
			t.Fatalf("the check-ins took %v, more than the settle time", since)
		}
		if c, _ := rec.counts(); c != commits0 {
			t.Fatalf("%d commits %v after the first check-in, before the settle time", c-commits0, time.Since(first))
		}
		time.Sleep(scheduler.DefaultSettle - time.Since(first))
		synctest.Wait()
		commits, devices := rec.counts()
		if commits-commits0 != 1 || devices != 5 {
			t.Errorf("5 check-ins within the settle time: %d commits of %d devices, want 1 of 5", commits-commits0, devices)
		}
		for i := range 5 {
			if st := u.state(fmt.Sprintf("MAC-%02d", i)); st.Phase != softwareupdate.PhasePending {
				t.Errorf("MAC-%02d: phase %s, want pending", i, st.Phase)
			}
		}

		// A lone check-in later on.
		u.addMac("LONE", "15.1", "J413AP", true)
		time.Sleep(scheduler.DefaultSettle)
		synctest.Wait()
		if st := u.state("LONE"); st.Phase != softwareupdate.PhasePending {
			t.Errorf("lone check-in: phase %s after the settle time, want pending", st.Phase)
		}
		stop()
	})
}

// TestUnrequestedInventoryWaitsForPass: on the scheduler that runs
// passes, a DeviceInformation it did not send (enrolment's, the daily one)
// writes nothing by itself; the Macs are evaluated with their stored
// inventory at the next settled pass, together. A replica that runs no
// passes (not the leader) still evaluates such a report at once.
func TestUnrequestedInventoryWaitsForPass(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		u := newUnit(t, utcAt(2026, 3, 2, 9, 0))
		rec := &countStore{Store: u.store}
		u.useStore(rec)
		if _, err := u.mgr.SetPolicy(ctx, "admin", scheduler.DefaultGroupID, softwareupdate.Policy{
			Mode: softwareupdate.ModeManual, MinimumVersion: "15.2", Date: "2026-03-20", TimeOfDay: "17:00", TimeZone: "UTC"}); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"MAC-A", "MAC-B", "MAC-C"} {
			u.addMac(id, "15.1", "J413AP", true)
		}
		u.pass()
		// The Macs were updated by hand; the service stores each
		// inventory, then hands the report to the scheduler.
		report := func(id string) {
			t.Helper()
			inv := &mdm.Inventory{OSVersion: "15.2", BuildVersion: "24C101", ProductName: "Mac14,2", SoftwareUpdateDeviceID: "J413AP", IsSupervised: true}
			if err := u.store.UpdateInventory(ctx, id, inv, u.clk.Now()); err != nil {
				t.Fatal(err)
			}
			rep := &mdm.Report{Enrollment: mdm.Enrollment{UDID: id}, Status: mdm.Acknowledged, CommandUUID: "daily-inventory-" + id, RequestType: "DeviceInformation"}
			if err := u.sched.HandleResult(ctx, id, "DeviceInformation", rep, nil); err != nil {
				t.Fatal(err)
			}
		}

		// Not the leader: no Run here, so evaluated at once.
		report("MAC-C")
		if st := u.state("MAC-C"); st.Phase != softwareupdate.PhaseCompliant {
			t.Fatalf("without Run: phase %s, want compliant at once", st.Phase)
		}

		stop := u.runLoop(ctx)
		defer stop()
		synctest.Wait() // Run's first pass
		commits0, devices0 := rec.counts()
		for _, id := range []string{"MAC-A", "MAC-B"} {
			report(id)
		}
		synctest.Wait()
		if c, _ := rec.counts(); c != commits0 {
			t.Fatalf("%d commits for unrequested inventories before the settle time, want 0", c-commits0)
		}
		if st := u.state("MAC-A"); st.Phase != softwareupdate.PhasePending {
			t.Fatalf("evaluated before the pass: phase %s", st.Phase)
		}
		time.Sleep(scheduler.DefaultSettle)
		synctest.Wait()
		commits, devices := rec.counts()
		if commits-commits0 != 1 || devices-devices0 != 2 {
			t.Errorf("%d commits of %d Macs at the pass, want 1 of 2", commits-commits0, devices-devices0)
		}
		for _, id := range []string{"MAC-A", "MAC-B"} {
			if st := u.state(id); st.Phase != softwareupdate.PhaseCompliant {
				t.Errorf("%s after the pass: phase %s, want compliant", id, st.Phase)
			}
		}
	})
}

// TestPolicyChangedOnAnotherReplica: a policy set through another replica's
// Manager (which only tells its own scheduler) reaches the leader's
// scheduler at its next pass.
func TestPolicyChangedOnAnotherReplica(t *testing.T) {
	ctx := t.Context()
	u := newUnit(t, utcAt(2026, 3, 2, 9, 0))
	if _, err := u.mgr.SetPolicy(ctx, "admin", scheduler.DefaultGroupID, softwareupdate.Policy{
		Mode: softwareupdate.ModeAutomatic, DelayDays: 1, TimeOfDay: "17:00", TimeZone: "UTC"}); err != nil {
		t.Fatal(err)
	}
	u.addMac("A", "15.1", "J413AP", true)
	u.pass()
	if st := u.state("A"); st.Phase != softwareupdate.PhasePending {
		t.Fatalf("phase = %s", st.Phase)
	}
	// Replica B: its own scheduler and manager on the same store.
	other := scheduler.New(u.store, u.store, testCatalog(t), u.clk)
	mgrB := scheduler.NewManager(u.store, testCatalog(t), u.clk, other)
	if _, err := mgrB.SetPolicy(ctx, "admin", scheduler.DefaultGroupID, softwareupdate.Policy{Mode: softwareupdate.ModeUnmanaged}); err != nil {
		t.Fatal(err)
	}
	u.pass() // the leader (u.sched) was not told
	if st := u.state("A"); st.Phase != softwareupdate.PhaseUnmanaged {
		t.Errorf("leader kept the old policy: phase %s", st.Phase)
	}
}

// orderStore records the devices of each commit in order.
type orderStore struct {
	*bolt.Store
	ids []string
}

func (s *orderStore) Commit(ctx context.Context, commits []scheduler.Commit, now time.Time) error {
	for _, c := range commits {
		s.ids = append(s.ids, c.State.DeviceID)
	}
	return s.Store.Commit(ctx, commits, now)
}

// TestDueDevicesCommittedInDeviceOrder: a pass commits its due devices in
// device order, chunk after chunk, not in due-time order. The stored
// states, histories and queues are keyed by device, so neighbouring devices
// share pages; this keeps a pass in which a whole fleet changes phase from
// rewriting the same pages chunk after chunk (see docs/benchmarks.md).
func TestDueDevicesCommittedInDeviceOrder(t *testing.T) {
	ctx := t.Context()
	u := newUnit(t, utcAt(2026, 3, 2, 9, 0))
	rec := &orderStore{Store: u.store}
	u.useStore(rec, scheduler.WithBatchSize(3))
	u.twoRings(2)
	// The late ring holds the first devices by ID, so by due time the
	// last devices come first.
	var ids []string
	for i := range 10 {
		id := fmt.Sprintf("MAC-%02d", i)
		ids = append(ids, id)
		u.addMac(id, "15.1", "J413AP", true)
	}
	if err := u.mgr.AssignDevices(ctx, "admin", "late", ids[:5]); err != nil {
		t.Fatal(err)
	}
	u.pass()
	for _, id := range ids {
		if st := u.state(id); st.Phase != softwareupdate.PhasePending {
			t.Fatalf("%s: phase %s after the first pass, want pending", id, st.Phase)
		}
	}
	// Both rings' notify windows have opened: every device is due, the
	// default ring's since 03-15 and the late ring's since 03-17.
	rec.ids = nil
	u.clk.Set(utcAt(2026, 3, 18, 9, 0))
	if st := u.pass(); st.Changed != len(ids) {
		t.Fatalf("pass changed %d devices, want %d", st.Changed, len(ids))
	}
	if !slices.Equal(rec.ids, ids) {
		t.Fatalf("committed in the order %v, want %v", rec.ids, ids)
	}
	for _, id := range ids {
		if st := u.state(id); st.Phase != softwareupdate.PhaseNotify {
			t.Errorf("%s: phase %s, want notify", id, st.Phase)
		}
	}
}
