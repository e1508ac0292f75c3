package storagetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// ReadinessInputStore is what RunReadinessInputs needs: the Managed OS
// and agent stores and the listing of the forecast's inputs.
type ReadinessInputStore interface {
	ManagedOSStore
	storage.AgentStore
	scheduler.ReadinessInputStore
}

// RunReadinessInputs checks that ReadinessInputs lists, page by page in
// device order, exactly the states in the forecast window of Macs whose
// device channel is enrolled, with the fields the per-Mac reads (Devices,
// States, GroupsOf, AgentState) give. newStore must return an empty
// store; the suite closes it.
func RunReadinessInputs(t *testing.T, newStore func(t *testing.T) ReadinessInputStore) {
	s := newStore(t)
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	now := t0.Add(24 * time.Hour)
	until := now.Add(7 * 24 * time.Hour)
	if rows, next, err := s.ReadinessInputs(ctx, "", 10, until, nil); err != nil || len(rows) != 0 || next != "" {
		t.Fatalf("empty store: %+v %q %v", rows, next, err)
	}
	ids := []string{"RI-A", "RI-B", "RI-C", "RI-D", "RI-E", "RI-F", "RI-G", "RI-H"}
	for _, id := range ids {
		enroll(t, s, id, "cert-"+id)
	}
	user := enrollUser(t, s, "RI-A", "user1")
	if err := s.PutGroup(ctx, scheduler.Group{ID: "lab", Name: "Lab"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.AssignDevices(ctx, "lab", []string{"RI-B", "RI-E"}, nil); err != nil {
		t.Fatal(err)
	}
	inv := &mdm.Inventory{OSVersion: "15.1", BuildVersion: "24B83", SerialNumber: "C02INV", AvailableDeviceCapacity: 41.5}
	if err := s.UpdateInventory(ctx, "RI-B", inv, now); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchLastSeen(ctx, map[string]time.Time{"RI-A": now.Add(-time.Hour), "RI-B": now.Add(-100 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"RI-A", "RI-B"} {
		if err := s.PutAgentSecret(ctx, id, "hash", now); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AppendAgentReport(ctx, "RI-A", storage.AgentReport{TimeZone: "Europe/Paris"}, now.Add(-2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Phases and deadlines in and out of the window; a state of a user
	// channel and one of a device that never enrolled are not listed.
	type spec struct {
		id       string
		phase    softwareupdate.Phase
		deadline time.Time
		in       bool
	}
	specs := []spec{
		{"RI-A", softwareupdate.PhaseNotify, now.Add(48 * time.Hour), true},
		{"RI-B", softwareupdate.PhasePaused, time.Time{}, true},
		{"RI-C", softwareupdate.PhaseCompliant, now.Add(time.Hour), false},
		{"RI-D", softwareupdate.PhasePending, until.Add(time.Hour), false},
		{"RI-E", softwareupdate.PhaseFailed, now.Add(-time.Hour), true},
		{"RI-F", softwareupdate.PhaseExempt, now, false},
		{"RI-G", softwareupdate.PhaseEnforce, until, true},
		{"RI-H", softwareupdate.PhaseUnsupported, now.Add(time.Hour), true},
		{user, softwareupdate.PhaseNotify, now, false},
		{"RI-Z", softwareupdate.PhaseNotify, now, false},
	}
	var commits []scheduler.Commit
	var want []string
	for i, sp := range specs {
		st := &scheduler.State{DeviceID: sp.id, GroupID: "lab", Phase: sp.phase, Target: "15.2", Deadline: sp.deadline,
			Reason: fmt.Sprintf("reason %d", i), Failure: map[bool]string{true: "InstallFailed"}[sp.phase == softwareupdate.PhaseFailed],
			Facts: scheduler.Facts{OSVersion: "15.1", Build: "24B83", BoardID: "J413AP", Model: "Mac14,2", InventoryAt: now,
				Supervised: i%2 == 0, AppleSilicon: i%3 != 0}}
		commits = append(commits, scheduler.Commit{State: st})
		if sp.in {
			want = append(want, sp.id)
		}
	}
	if err := s.Commit(ctx, commits, now); err != nil {
		t.Fatal(err)
	}
	// Each page reuses the last one's rows, as the forecaster does: no
	// field of an earlier row may leak into a later one.
	var got, rows []scheduler.ReadinessRow
	pages := 0
	for after := ""; ; pages++ {
		var next string
		var err error
		rows, next, err = s.ReadinessInputs(ctx, after, 3, until, rows)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) > 3 {
			t.Fatalf("page of %d rows, limit 3", len(rows))
		}
		got = append(got, rows...)
		if next == "" {
			break
		}
		if next <= after {
			t.Fatalf("next %q does not advance past %q", next, after)
		}
		after = next
	}
	// 10 states examined 3 at a time: 4 pages (the last one short).
	if pages != 3 {
		t.Errorf("%d pages after the first, want 3", pages)
	}
	if len(got) != len(want) {
		t.Fatalf("listed %d rows, want %v", len(got), want)
	}
	states, err := s.States(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := s.GroupsOf(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	devs := map[string]*mdm.Device{}
	all, err := s.Devices(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range all {
		devs[d.ID] = d
	}
	for i, id := range want {
		d := devs[id]
		w := scheduler.ReadinessRow{State: *states[i], GroupID: groups[i], SerialNumber: d.SerialNumber,
			InventorySerial: d.Inventory.SerialNumber, FreeGB: d.Inventory.AvailableDeviceCapacity, LastSeen: d.LastSeen}
		switch a, err := s.AgentState(ctx, id); {
		case errors.Is(err, storage.ErrNotFound):
		case err != nil:
			t.Fatal(err)
		default:
			w.AgentReportAt = a.LastReportAt
		}
		g := got[i]
		if !reflect.DeepEqual(g.State, w.State) {
			t.Errorf("row %d state = %+v, want %+v", i, g.State, w.State)
		}
		g.State, w.State = scheduler.State{}, scheduler.State{}
		if !g.LastSeen.Equal(w.LastSeen) || !g.AgentReportAt.Equal(w.AgentReportAt) {
			t.Errorf("row %d %s: last seen %v agent %v, want %v %v", i, id, g.LastSeen, g.AgentReportAt, w.LastSeen, w.AgentReportAt)
		}
		g.LastSeen, w.LastSeen, g.AgentReportAt, w.AgentReportAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if g != w {
			t.Errorf("row %d = %+v, want %+v", i, g, w)
		}
	}
	// The fixture must exercise what it claims to.
	if got[1].GroupID != "lab" || got[1].InventorySerial != "C02INV" || got[1].FreeGB != 41.5 || got[0].AgentReportAt.IsZero() ||
		got[0].LastSeen.IsZero() {
		t.Errorf("fixture fields not listed: %+v %+v", got[0], got[1])
	}
}
