package scheduler_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/ddm"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/declarative"
	"github.com/sundial-mdm/sundial/softwareupdate/legacy"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// recordingDDM keeps each Mac's last enforcement, as the DDM layer would
// declare it. A Mac listed in broken makes SetEnforcement fail (a storage
// error in the DDM layer).
type recordingDDM struct {
	mu     sync.Mutex
	last   map[string]ddm.Enforcement
	broken map[string]bool
}

func (f *recordingDDM) SetEnforcement(_ context.Context, id string, e ddm.Enforcement) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.broken[id] {
		return false, errors.New("store enforcement: disk I/O error")
	}
	if _, err := e.Payload(); err != nil {
		return false, err
	}
	if f.last == nil {
		f.last = map[string]ddm.Enforcement{}
	}
	f.last[id] = e
	return true, nil
}

func (f *recordingDDM) RemoveEnforcement(_ context.Context, id string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.last[id]
	delete(f.last, id)
	return ok, nil
}

func (f *recordingDDM) payload(t *testing.T, id string) ddm.EnforcementPayload {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.last[id]
	if !ok {
		t.Fatalf("%s has no enforcement declaration", id)
	}
	p, err := e.Payload()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// agentZones is the zone each Mac's agent reported.
type agentZones map[string]string

func (z agentZones) DeviceZone(_ context.Context, id string) string { return z[id] }

// TestDeviceLocalDeadline: a device-local deadline of 12:00 on day X is
// 12:00 on day X in each Mac's own zone. The declaration's
// TargetLocalDateTime (deadline + 30 min, read by the Mac in its own zone)
// is 12:30 on day X for a Mac whose agent reported its zone and for one
// whose agent has not (the policy's fallback zone is used). On main the
// deadline was computed in UTC-12 and written 01:30 the next night for a
// Mac in Berlin, and a Mac without a zone aborted the whole pass.
func TestDeviceLocalDeadline(t *testing.T) {
	ctx := t.Context()
	u := newUnit(t, utcAt(2026, 3, 2, 9, 0))
	f := &recordingDDM{}
	zones := agentZones{"berlin": "Europe/Berlin", "newyork": "America/New_York"}
	u.useStore(u.store, scheduler.WithZones(zones),
		scheduler.WithEnforcer(softwareupdate.PathDeclarative, declarative.New(f, zones, nil)))
	if _, err := u.mgr.SetPolicy(ctx, "admin", scheduler.DefaultGroupID, softwareupdate.Policy{
		Mode: softwareupdate.ModeManual, MinimumVersion: "15.2", Date: "2026-03-20", TimeOfDay: "12:00",
		TimeZone: softwareupdate.DeviceLocal, FallbackTimeZone: "Asia/Tokyo"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"berlin", "newyork", "nozone"} {
		u.addMac(id, "15.1", "J413AP", true)
	}
	u.pass()                             // first seen non-compliant well before the deadline
	u.clk.Set(utcAt(2026, 3, 16, 12, 0)) // within 5 days of every Mac's deadline
	u.pass()
	for id, want := range map[string]time.Time{
		"berlin":  utcAt(2026, 3, 20, 11, 0), // 12:00 CET
		"newyork": utcAt(2026, 3, 20, 16, 0), // 12:00 EDT
		"nozone":  utcAt(2026, 3, 20, 3, 0),  // 12:00 in Tokyo, the fallback
	} {
		st := u.state(id)
		if st.Phase != softwareupdate.PhaseNotify || !st.Deadline.Equal(want) {
			t.Errorf("%s: phase %s deadline %v (%s), want notify %v", id, st.Phase, st.Deadline, st.Failure, want)
		}
		if p := f.payload(t, id); p.TargetLocalDateTime != "2026-03-20T12:30:00" {
			t.Errorf("%s: TargetLocalDateTime = %s, want 2026-03-20T12:30:00", id, p.TargetLocalDateTime)
		}
	}
	// The agent reports the zone later: the deadline moves to the Mac's own noon.
	zones["nozone"] = "Europe/Lisbon"
	u.sched.Touch("nozone")
	u.pass()
	if st := u.state("nozone"); !st.Deadline.Equal(utcAt(2026, 3, 20, 12, 0)) {
		t.Errorf("nozone after its zone was reported: deadline %v, want 12:00 Lisbon", st.Deadline)
	}
	if p := f.payload(t, "nozone"); p.TargetLocalDateTime != "2026-03-20T12:30:00" {
		t.Errorf("nozone after its zone was reported: TargetLocalDateTime = %s", p.TargetLocalDateTime)
	}
}

// TestOneDeviceErrorDoesNotStopThePass: an error while evaluating one Mac
// is recorded on that Mac (failed, with the reason, retried after
// EvaluationRetry) and every other Mac still moves. On main the error
// aborted the whole pass and no Mac moved.
func TestOneDeviceErrorDoesNotStopThePass(t *testing.T) {
	ctx := t.Context()
	u := newUnit(t, utcAt(2026, 3, 2, 9, 0))
	f := &recordingDDM{broken: map[string]bool{"bad": true}}
	u.useStore(u.store, scheduler.WithEnforcer(softwareupdate.PathDeclarative, declarative.New(f, agentZones{}, nil)))
	u.twoRings(3)
	ids := []string{"a", "bad", "c"}
	for _, id := range ids {
		u.addMac(id, "15.1", "J413AP", true)
	}
	if err := u.mgr.AssignDevices(ctx, "admin", "late", []string{"c"}); err != nil {
		t.Fatal(err)
	}
	u.pass()
	u.clk.Set(utcAt(2026, 3, 19, 12, 0)) // both rings within 5 days of their deadline
	if _, err := u.sched.RunOnce(ctx); err != nil {
		t.Fatalf("pass failed: %v", err)
	}
	for _, id := range []string{"a", "c"} {
		if st := u.state(id); st.Phase != softwareupdate.PhaseNotify || st.Step != declarative.StepDeclared {
			t.Errorf("%s: phase %s step %q (%s), want notify with its declaration", id, st.Phase, st.Step, st.Failure)
		}
	}
	st := u.state("bad")
	if st.Phase != softwareupdate.PhaseFailed || !strings.Contains(st.Failure, "disk I/O error") ||
		!st.RetryAt.Equal(u.clk.Now().Add(scheduler.EvaluationRetry)) {
		t.Fatalf("bad: phase %s failure %q retry %v", st.Phase, st.Failure, st.RetryAt)
	}
	h, err := u.store.History(ctx, "bad", 0)
	if err != nil {
		t.Fatal(err)
	}
	if last := h[len(h)-1]; last.Kind != scheduler.EventFailure && (last.Kind != scheduler.EventPhase || last.To != softwareupdate.PhaseFailed) {
		t.Errorf("bad: last history entry %+v, want the failure", last)
	}
	// Fixed: the retry after EvaluationRetry declares it.
	f.mu.Lock()
	f.broken = nil
	f.mu.Unlock()
	u.clk.Set(st.RetryAt)
	u.pass()
	if st := u.state("bad"); st.Phase != softwareupdate.PhaseNotify || st.Failure != "" || st.Step != declarative.StepDeclared {
		t.Errorf("bad after the retry: phase %s failure %q step %q", st.Phase, st.Failure, st.Step)
	}
}

// brokenReader fails to read one device record.
type brokenReader struct {
	scheduler.DeviceReader
	bad string
}

func (b brokenReader) Device(ctx context.Context, id string) (*mdm.Device, error) {
	if id == b.bad {
		return nil, errors.New("decode device: unexpected end of record")
	}
	return b.DeviceReader.Device(ctx, id)
}

// TestUnreadableDeviceDoesNotStopThePass: a device record that cannot be
// read is skipped (and logged); the other touched devices are evaluated.
func TestUnreadableDeviceDoesNotStopThePass(t *testing.T) {
	u := newUnit(t, utcAt(2026, 3, 2, 9, 0))
	u.twoRings(3)
	u.addMac("good", "15.1", "J413AP", true)
	u.addMac("bad", "15.1", "J413AP", true)
	u.sched = scheduler.New(u.store, brokenReader{u.store, "bad"}, testCatalog(t), u.clk,
		scheduler.WithEnforcer(softwareupdate.PathLegacy, legacy.New(legacy.Config{})))
	u.sched.Touch("good", "bad")
	if _, err := u.sched.RunOnce(t.Context()); err != nil {
		t.Fatalf("pass failed: %v", err)
	}
	if st := u.state("good"); st.Phase != softwareupdate.PhasePending {
		t.Errorf("good = %s", st.Phase)
	}
}
