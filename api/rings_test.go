package api

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"net/http/httptest"

	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/bolt"
)

func intp(v int) *int { return &v }

// TestRingEndpoints drives the ring plan endpoints over real HTTP, a real
// bbolt store and the real scheduler: one Mac in pilot and one in broad,
// both behind 15.2; the broad ring is held until promoted.
func TestRingEndpoints(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	store, err := bolt.Open(filepath.Join(t.TempDir(), "sundial.db"), &bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	rel := func(v, build, posted string) catalog.Release {
		d, _ := time.Parse(time.DateOnly, posted)
		return catalog.Release{Version: catalog.MustParseVersion(v), Build: build, PostingDate: d, SupportedDevices: []string{"J413AP"}}
	}
	cat, err := catalog.New(rel("15.1", "24B83", "2025-10-28"), rel("15.2", "24C101", "2026-02-20"))
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(now)
	sched := scheduler.New(store, store, cat, clk)
	mgr := scheduler.NewManager(store, cat, clk, sched)
	for _, g := range []string{"pilot", "broad"} {
		id := "MAC-" + strings.ToUpper(g)
		if err := store.Authenticate(ctx, id, &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: id}, MessageType: mdm.Authenticate, Topic: "t", OSVersion: "15.1"}, "cert-"+id, now); err != nil {
			t.Fatal(err)
		}
		if err := store.UpdateInventory(ctx, id, &mdm.Inventory{OSVersion: "15.1", SoftwareUpdateDeviceID: "J413AP", SerialNumber: "SN-" + id, IsSupervised: true}, now); err != nil {
			t.Fatal(err)
		}
		if _, err := mgr.CreateGroup(ctx, "admin", g, g); err != nil {
			t.Fatal(err)
		}
		if _, err := mgr.SetPolicy(ctx, "admin", g, softwareupdate.Policy{Mode: "manual", MinimumVersion: "15.2", Date: "2026-03-20", TimeOfDay: "17:00", TimeZone: "UTC"}); err != nil {
			t.Fatal(err)
		}
		if err := mgr.AssignDevices(ctx, "admin", g, []string{id}); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []storage.APIKey{{ID: "admin", Name: "alice", Hash: HashKey("admin-key"), CreatedAt: now, Role: RoleAdmin}, {ID: "reader", Hash: HashKey("read-key"), CreatedAt: now, Role: RoleRead}} {
		if err := store.PutAPIKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	s := New(store, noEnqueue{}, nil).WithManagedOS(mgr, cat).WithRingStatuses(sched)
	r := mux.NewRouter()
	s.Register(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	admin := &Client{BaseURL: srv.URL, APIKey: "admin-key"}
	reader := &Client{BaseURL: srv.URL, APIKey: "read-key"}
	pass := func() {
		t.Helper()
		if _, err := sched.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// Bad input changes nothing.
	for name, b := range map[string]RingPlanBody{
		"one group":      {Groups: []string{"pilot"}},
		"twice":          {Groups: []string{"pilot", "pilot"}},
		"percent > 100":  {Groups: []string{"pilot", "broad"}, Gate: scheduler.RingGate{MinCompliantPercent: intp(101)}},
		"max wait 0":     {Groups: []string{"pilot", "broad"}, Gate: scheduler.RingGate{MaxWaitHours: intp(0)}},
		"negative":       {Groups: []string{"pilot", "broad"}, Gate: scheduler.RingGate{MaxFailedPercent: intp(-1)}},
		"bad group name": {Groups: []string{"pilot", "a b"}},
	} {
		_, err := admin.SetRingPlan(ctx, "macos", b)
		wantCode(t, err, CodeInvalid)
		t.Log(name, err)
	}
	_, err = admin.SetRingPlan(ctx, "macos", RingPlanBody{Groups: []string{"pilot", "nope"}})
	wantCode(t, err, CodeNotFound)
	_, err = reader.SetRingPlan(ctx, "macos", RingPlanBody{Groups: []string{"pilot", "broad"}})
	wantCode(t, err, CodeForbidden)
	if ps, err := admin.RingPlans(ctx); err != nil || len(ps) != 0 {
		t.Fatalf("plans after bad input = %+v, %v", ps, err)
	}

	v, err := admin.SetRingPlan(ctx, "macos", RingPlanBody{Groups: []string{"pilot", "broad"}, Gate: scheduler.RingGate{MaxWaitHours: intp(48)}})
	if err != nil {
		t.Fatal(err)
	}
	if v.Gate != (RingGateSettings{MinCompliantPercent: 90, MaxFailedPercent: 2, MaxWaitHours: 48}) || v.Evaluated {
		t.Fatalf("set = %+v, want the defaults filled in and no evaluation yet", v)
	}
	pass()
	ps, err := reader.RingPlans(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || !ps[0].Evaluated || len(ps[0].Rings) != 2 {
		t.Fatalf("plans = %+v", ps)
	}
	pilot, broad := ps[0].Rings[0], ps[0].Rings[1]
	if pilot.Held || pilot.Started == nil || pilot.Tally == nil || pilot.Tally.Eligible != 1 || pilot.Gate == nil || pilot.Gate.Open {
		t.Fatalf("pilot ring = %+v", pilot)
	}
	if !broad.Held || broad.HeldBy != "pilot" || !strings.Contains(broad.Reason, "0 of 1 Macs compliant") || broad.Started != nil || broad.NeedsPromotion {
		t.Fatalf("broad ring = %+v", broad)
	}

	// Past the maximum wait, the broad ring needs a promotion by hand.
	clk.Set(now.Add(49 * time.Hour))
	pass()
	one, err := reader.RingPlan(ctx, "macos")
	if err != nil {
		t.Fatal(err)
	}
	if b := one.Rings[1]; !b.Held || !b.NeedsPromotion || !strings.Contains(b.Reason, "promote by hand") {
		t.Fatalf("broad after the maximum wait = %+v", b)
	}
	_, err = reader.RingPlan(ctx, "nope")
	wantCode(t, err, CodeNotFound)
	_, err = admin.PromoteRing(ctx, "nope", "broad")
	wantCode(t, err, CodeNotFound)
	_, err = admin.PromoteRing(ctx, "macos", "pilot")
	wantCode(t, err, CodeInvalid)
	_, err = admin.PromoteRing(ctx, "macos", "other")
	wantCode(t, err, CodeInvalid)
	_, err = reader.PromoteRing(ctx, "macos", "broad")
	wantCode(t, err, CodeForbidden)

	v, err = admin.PromoteRing(ctx, "macos", "broad")
	if err != nil {
		t.Fatal(err)
	}
	if v.Rings[0].Promoted == nil || v.Rings[0].Promoted.Actor != "alice" {
		t.Fatalf("promotion = %+v", v.Rings[0])
	}
	pass()
	one, err = reader.RingPlan(ctx, "macos")
	if err != nil {
		t.Fatal(err)
	}
	if b := one.Rings[1]; b.Held || b.Started == nil {
		t.Fatalf("broad after the promotion = %+v", b)
	}
	if st, err := store.States(ctx, []string{"MAC-BROAD"}); err != nil || st[0] == nil || strings.Contains(st[0].Reason, "held") || st[0].Deadline.IsZero() {
		t.Fatalf("MAC-BROAD after the promotion = %+v, %v", st, err)
	}

	err = reader.DeleteRingPlan(ctx, "macos")
	wantCode(t, err, CodeForbidden)
	if err := admin.DeleteRingPlan(ctx, "macos"); err != nil {
		t.Fatal(err)
	}
	err = admin.DeleteRingPlan(ctx, "macos")
	wantCode(t, err, CodeNotFound)
	a, err := store.Audit(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range a {
		if strings.HasPrefix(e.Action, "rings.") {
			actions = append(actions, e.Action+" "+e.Subject+" by "+e.Actor)
		}
	}
	want := []string{"rings.set rings/macos by alice", "rings.promote rings/macos/pilot by alice", "rings.remove rings/macos by alice"}
	if strings.Join(actions, "|") != strings.Join(want, "|") {
		t.Fatalf("ring audit = %q, want %q", actions, want)
	}
}

// TestRingBefore: promoting a ring opens the gate of the ring before it,
// which must itself have started unless it is the first ring.
func TestRingBefore(t *testing.T) {
	started := scheduler.RingState{Started: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	p := scheduler.RingPlan{ID: "macos", Groups: []string{"pilot", "early", "broad"}, States: make([]scheduler.RingState, 3)}
	if g, err := ringBefore(p, "early"); err != nil || g != "pilot" {
		t.Errorf("promote early before any evaluation = %q, %v; want pilot", g, err)
	}
	_, err := ringBefore(p, "broad")
	wantCode(t, err, CodeConflict)
	if err == nil || !strings.Contains(err.Error(), "promote early first") {
		t.Errorf("promote broad while early is held = %v", err)
	}
	p.States[0], p.States[1] = started, started
	if g, err := ringBefore(p, "broad"); err != nil || g != "early" {
		t.Errorf("promote broad after early started = %q, %v; want early", g, err)
	}
	_, err = ringBefore(p, "pilot")
	wantCode(t, err, CodeInvalid)
	_, err = ringBefore(p, "late")
	wantCode(t, err, CodeInvalid)
}
