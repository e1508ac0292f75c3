package scheduler_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/legacy"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// enrolSteps drives one Mac's enrolment as the service does on the leader
// (Authenticate, TokenUpdate, the enrolment's DeviceInformation), with a
// pass after each event: the worst case, where every event lands in a pass
// of its own.
func enrolSteps(t testing.TB, u *unit, id string) {
	t.Helper()
	ctx := context.Background()
	now := u.clk.Now()
	pass := func() {
		if _, err := u.sched.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	auth := &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: id}, MessageType: mdm.Authenticate, Topic: "t", OSVersion: "15.1"}
	if err := u.store.Authenticate(ctx, id, auth, "cert-"+id, now); err != nil {
		t.Fatal(err)
	}
	u.sched.Checkin(ctx, id, auth)
	pass()
	tok := &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: id}, MessageType: mdm.TokenUpdate, Topic: "t", Token: []byte("token"), PushMagic: "magic"}
	if _, err := u.store.TokenUpdate(ctx, id, tok, nil, now); err != nil {
		t.Fatal(err)
	}
	u.sched.Checkin(ctx, id, tok)
	pass()
	inv := &mdm.Inventory{OSVersion: "15.1", BuildVersion: "24B83", ProductName: "Mac14,2", SoftwareUpdateDeviceID: "J413AP", IsSupervised: true}
	if err := u.store.UpdateInventory(ctx, id, inv, now); err != nil {
		t.Fatal(err)
	}
	rep := &mdm.Report{Enrollment: mdm.Enrollment{UDID: id}, Status: mdm.Acknowledged, CommandUUID: "enrol-inventory-" + id, RequestType: "DeviceInformation"}
	if err := u.sched.HandleResult(ctx, id, "DeviceInformation", rep, nil); err != nil {
		t.Fatal(err)
	}
	pass()
	// A later TokenUpdate that changes nothing the scheduler keeps.
	u.sched.Checkin(ctx, id, tok)
	pass()
}

// TestEnrolmentWritesOnce: a Mac's enrolment writes its state once, when
// its first inventory is in, however its events fall into passes, with no
// policy (the default group unmanaged) and with one; a later check-in that
// changes nothing writes nothing.
func TestEnrolmentWritesOnce(t *testing.T) {
	for _, managed := range []bool{false, true} {
		u := newUnit(t, utcAt(2026, 3, 2, 9, 0))
		rec := &countStore{Store: u.store}
		u.useStore(rec)
		scheduler.SetLeader(u.sched, true)
		if managed {
			if _, err := u.mgr.SetPolicy(t.Context(), "admin", scheduler.DefaultGroupID, softwareupdate.Policy{
				Mode: softwareupdate.ModeManual, MinimumVersion: "15.2", Date: "2026-03-20", TimeOfDay: "17:00", TimeZone: "UTC"}); err != nil {
				t.Fatal(err)
			}
			u.pass() // the policy's sweep
		}
		enrolSteps(t, u, "MAC-1")
		commits, devices := rec.counts()
		if commits != 1 || devices != 1 {
			t.Errorf("managed=%v: %d commits of %d states, want 1 of 1", managed, commits, devices)
		}
		want := softwareupdate.PhaseUnmanaged
		if managed {
			want = softwareupdate.PhasePending
		}
		if st := u.state("MAC-1"); st.Phase != want || st.Facts.InventoryAt.IsZero() || st.Facts.Build != "24B83" {
			t.Errorf("managed=%v: phase %s, facts %+v; want %s with the inventory's", managed, st.Phase, st.Facts, want)
		}
	}
}

// TestFirstEvaluationWaitsForInventory: a Mac that enrols but never
// answers its first DeviceInformation is evaluated with the facts it has
// once FirstInventoryWait is over; a device deleted while it waits is
// forgotten.
func TestFirstEvaluationWaitsForInventory(t *testing.T) {
	ctx := t.Context()
	u := newUnit(t, utcAt(2026, 3, 2, 9, 0))
	if _, err := u.mgr.SetPolicy(ctx, "admin", scheduler.DefaultGroupID, softwareupdate.Policy{
		Mode: softwareupdate.ModeManual, MinimumVersion: "15.2", Date: "2026-03-20", TimeOfDay: "17:00", TimeZone: "UTC"}); err != nil {
		t.Fatal(err)
	}
	devices := &goneReader{DeviceReader: u.store, gone: map[string]bool{}}
	u.sched = scheduler.New(u.store, devices, testCatalog(t), u.clk, scheduler.WithEnforcer(softwareupdate.PathLegacy, legacy.New(legacy.Config{})))
	scheduler.SetLeader(u.sched, true)
	for _, id := range []string{"QUIET", "GONE"} {
		auth := &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: id}, MessageType: mdm.Authenticate, Topic: "t", OSVersion: "15.1"}
		if err := u.store.Authenticate(ctx, id, auth, "cert-"+id, u.clk.Now()); err != nil {
			t.Fatal(err)
		}
		tok := &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: id}, MessageType: mdm.TokenUpdate, Topic: "t", Token: []byte("token"), PushMagic: "magic"}
		if _, err := u.store.TokenUpdate(ctx, id, tok, nil, u.clk.Now()); err != nil {
			t.Fatal(err)
		}
		u.sched.Checkin(ctx, id, tok)
	}
	u.pass()
	if sts, err := u.store.States(ctx, []string{"QUIET"}); err != nil || sts[0] != nil {
		t.Fatalf("state before the inventory wait is over: %+v %v", sts[0], err)
	}
	devices.gone["GONE"] = true
	u.clk.Advance(scheduler.FirstInventoryWait - time.Second)
	u.pass()
	if sts, err := u.store.States(ctx, []string{"QUIET"}); err != nil || sts[0] != nil {
		t.Fatalf("state before the inventory wait is over: %+v %v", sts[0], err)
	}
	u.clk.Advance(time.Second)
	if st := u.pass(); st.Changed != 1 {
		t.Errorf("pass after the wait changed %d states, want 1", st.Changed)
	}
	if st := u.state("QUIET"); st.Phase != softwareupdate.PhasePending || st.Facts.OSVersion != "15.1" || !st.Facts.InventoryAt.IsZero() {
		t.Errorf("after the wait: phase %s facts %+v, want pending with the Authenticate facts", st.Phase, st.Facts)
	}
	if scheduler.Awaiting(u.sched) != 0 {
		t.Errorf("%d devices still awaiting their inventory, want 0", scheduler.Awaiting(u.sched))
	}
}

// goneReader reads devices, but not those deleted in gone.
type goneReader struct {
	scheduler.DeviceReader
	gone map[string]bool
}

func (r *goneReader) Device(ctx context.Context, id string) (*mdm.Device, error) {
	if r.gone[id] {
		return nil, storage.ErrNotFound
	}
	return r.DeviceReader.Device(ctx, id)
}

// BenchmarkEnrolmentPasses measures the passes that evaluate 100 Macs
// enrolling on the leader: one pass after their Authenticate and
// TokenUpdate check-ins, one after their first DeviceInformation (the
// device records are written with the timer stopped). states/Mac is how
// many update states those passes wrote per Mac.
func BenchmarkEnrolmentPasses(b *testing.B) {
	const macs = 100
	ctx := context.Background()
	u := newUnit(b, utcAt(2026, 3, 2, 9, 0))
	rec := &countStore{Store: u.store}
	u.useStore(rec)
	scheduler.SetLeader(u.sched, true)
	each := func(ids []string, f func(id string) error) {
		var wg sync.WaitGroup
		errs := make([]error, len(ids))
		for i, id := range ids {
			wg.Go(func() { errs[i] = f(id) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			b.Fatal(err)
		}
	}
	pass := func() {
		if _, err := u.sched.RunOnce(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		b.StopTimer()
		ids := make([]string, macs)
		for i := range ids {
			ids[i] = fmt.Sprintf("MAC-%08d", n)
			n++
		}
		now := u.clk.Now()
		each(ids, func(id string) error {
			auth := &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: id}, MessageType: mdm.Authenticate, Topic: "t", OSVersion: "15.1"}
			if err := u.store.Authenticate(ctx, id, auth, "cert-"+id, now); err != nil {
				return err
			}
			u.sched.Checkin(ctx, id, auth)
			tok := &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: id}, MessageType: mdm.TokenUpdate, Topic: "t", Token: []byte("token"), PushMagic: "magic"}
			if _, err := u.store.TokenUpdate(ctx, id, tok, nil, now); err != nil {
				return err
			}
			u.sched.Checkin(ctx, id, tok)
			return nil
		})
		b.StartTimer()
		pass()
		b.StopTimer()
		each(ids, func(id string) error {
			inv := &mdm.Inventory{OSVersion: "15.1", BuildVersion: "24B83", ProductName: "Mac14,2", SoftwareUpdateDeviceID: "J413AP", IsSupervised: true}
			if err := u.store.UpdateInventory(ctx, id, inv, now); err != nil {
				return err
			}
			rep := &mdm.Report{Enrollment: mdm.Enrollment{UDID: id}, Status: mdm.Acknowledged, CommandUUID: "enrol-inventory-" + id, RequestType: "DeviceInformation"}
			return u.sched.HandleResult(ctx, id, "DeviceInformation", rep, nil)
		})
		b.StartTimer()
		pass()
	}
	_, devices := rec.counts()
	b.ReportMetric(float64(devices)/float64(n), "states/Mac")
}

// TestRunWakesAfterInventoryWait: Run evaluates a Mac that never answers
// its first DeviceInformation once FirstInventoryWait is over, without
// another event or its tick.
func TestRunWakesAfterInventoryWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		u := newUnit(t, utcAt(2026, 3, 2, 9, 0))
		if _, err := u.mgr.SetPolicy(ctx, "admin", scheduler.DefaultGroupID, softwareupdate.Policy{
			Mode: softwareupdate.ModeManual, MinimumVersion: "15.2", Date: "2026-03-20", TimeOfDay: "17:00", TimeZone: "UTC"}); err != nil {
			t.Fatal(err)
		}
		stop := u.runLoop(ctx)
		defer stop()
		synctest.Wait()
		tok := &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: "QUIET"}, MessageType: mdm.TokenUpdate, Topic: "t", Token: []byte("token"), PushMagic: "magic"}
		auth := &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: "QUIET"}, MessageType: mdm.Authenticate, Topic: "t", OSVersion: "15.1"}
		if err := u.store.Authenticate(ctx, "QUIET", auth, "cert-QUIET", u.clk.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := u.store.TokenUpdate(ctx, "QUIET", tok, nil, u.clk.Now()); err != nil {
			t.Fatal(err)
		}
		u.sched.Checkin(ctx, "QUIET", tok)
		time.Sleep(2 * scheduler.DefaultSettle)
		synctest.Wait()
		if sts, err := u.store.States(ctx, []string{"QUIET"}); err != nil || sts[0] != nil {
			t.Fatalf("state before the inventory wait is over: %+v %v", sts[0], err)
		}
		u.clk.Advance(scheduler.FirstInventoryWait)
		time.Sleep(scheduler.FirstInventoryWait)
		synctest.Wait()
		if st := u.state("QUIET"); st.Phase != softwareupdate.PhasePending {
			t.Errorf("after the wait: phase %s, want pending", st.Phase)
		}
	})
}

// TestSweepEvaluatesAwaitingMac: a full re-evaluation (a policy change)
// evaluates every Mac at once, one waiting for its first inventory too.
func TestSweepEvaluatesAwaitingMac(t *testing.T) {
	ctx := t.Context()
	u := newUnit(t, utcAt(2026, 3, 2, 9, 0))
	scheduler.SetLeader(u.sched, true)
	auth := &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: "QUIET"}, MessageType: mdm.Authenticate, Topic: "t", OSVersion: "15.1"}
	if err := u.store.Authenticate(ctx, "QUIET", auth, "cert-QUIET", u.clk.Now()); err != nil {
		t.Fatal(err)
	}
	u.sched.Checkin(ctx, "QUIET", auth)
	u.pass()
	if scheduler.Awaiting(u.sched) != 1 {
		t.Fatalf("%d Macs awaiting their inventory, want 1", scheduler.Awaiting(u.sched))
	}
	if _, err := u.mgr.SetPolicy(ctx, "admin", scheduler.DefaultGroupID, softwareupdate.Policy{
		Mode: softwareupdate.ModeManual, MinimumVersion: "15.2", Date: "2026-03-20", TimeOfDay: "17:00", TimeZone: "UTC"}); err != nil {
		t.Fatal(err)
	}
	u.pass()
	if st := u.state("QUIET"); st.Phase != softwareupdate.PhasePending {
		t.Errorf("after the sweep: phase %s, want pending", st.Phase)
	}
	if n := scheduler.Awaiting(u.sched); n != 0 {
		t.Errorf("%d Macs still awaiting their inventory, want 0", n)
	}
}
