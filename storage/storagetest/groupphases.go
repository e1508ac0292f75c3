package storagetest

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// GroupPhaseStore is what RunGroupPhases needs: states committed by the
// scheduler and the listing of their groups and phases.
type GroupPhaseStore interface {
	scheduler.GroupPhaseStore
	Commit(ctx context.Context, commits []scheduler.Commit, now time.Time) error
	States(ctx context.Context, ids []string) ([]*scheduler.State, error)
}

// RunGroupPhases checks that GroupPhases lists every stored state's group
// and phase, as States has them, in device order, page by page.
func RunGroupPhases(t *testing.T, newStore func(t *testing.T) GroupPhaseStore) {
	s := newStore(t)
	ctx := t.Context()
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	if got, err := s.GroupPhases(ctx, "", 10); err != nil || len(got) != 0 {
		t.Fatalf("empty store: %+v %v", got, err)
	}
	phases := []softwareupdate.Phase{softwareupdate.PhasePending, softwareupdate.PhaseCompliant, softwareupdate.PhaseFailed,
		softwareupdate.PhaseNotify, softwareupdate.PhaseExempt}
	var commits []scheduler.Commit
	var want []scheduler.GroupPhase
	for i := range 7 {
		id := fmt.Sprintf("GP-%02d", i)
		st := &scheduler.State{DeviceID: id, GroupID: []string{"pilot", "broad"}[i%2], Phase: phases[i%len(phases)],
			Target: "15.2", Deadline: now.Add(72 * time.Hour), Reason: "because",
			Facts: scheduler.Facts{OSVersion: "15.1", Build: "24B83", BoardID: "J413AP", Model: "Mac14,2", InventoryAt: now}}
		commits = append(commits, scheduler.Commit{State: st})
		want = append(want, scheduler.GroupPhase{DeviceID: id, GroupID: st.GroupID, Phase: st.Phase})
	}
	if err := s.Commit(ctx, commits, now); err != nil {
		t.Fatal(err)
	}
	var got []scheduler.GroupPhase
	for after := ""; ; {
		page, err := s.GroupPhases(ctx, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 3 {
			t.Fatalf("page of %d, limit 3", len(page))
		}
		got = append(got, page...)
		if len(page) < 3 {
			break
		}
		after = page[len(page)-1].DeviceID
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("GroupPhases = %+v, want %+v", got, want)
	}
	ids := make([]string, len(want))
	for i := range want {
		ids[i] = want[i].DeviceID
	}
	states, err := s.States(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range states {
		if st == nil || st.GroupID != got[i].GroupID || st.Phase != got[i].Phase {
			t.Fatalf("state %d = %+v, GroupPhases %+v", i, st, got[i])
		}
	}
}
