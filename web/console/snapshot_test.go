package console

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

func TestSnapshotsRefreshInTheBackground(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	var builds atomic.Int32
	release := make(chan struct{}, 10)
	s := &snapshots{clock: clk, maxAge: 30 * time.Second, onErr: func(err error) { t.Error(err) },
		build: func(context.Context) (*Snapshot, error) {
			n := builds.Add(1)
			if n > 1 {
				<-release // a refresh waits until the test lets it finish
			}
			return &Snapshot{Report: &scheduler.ComplianceReport{GeneratedAt: clk.Now(), Devices: int(n)}}, nil
		}}
	ctx := context.Background()
	get := func() int {
		snap, err := s.get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return snap.Report.Devices
	}
	if got := get(); got != 1 || builds.Load() != 1 {
		t.Fatalf("first view: snapshot %d after %d builds", got, builds.Load())
	}
	clk.Advance(29 * time.Second)
	if got := get(); got != 1 || builds.Load() != 1 {
		t.Fatalf("fresh snapshot: %d after %d builds", got, builds.Load())
	}
	// Stale: the view gets the old snapshot at once and one refresh starts,
	// however many views come meanwhile.
	clk.Advance(time.Second)
	for range 5 {
		if got := get(); got != 1 {
			t.Fatalf("stale view waited for the refresh: %d", got)
		}
	}
	release <- struct{}{}
	waitUntil(t, func() bool { return get() == 2 })
	if builds.Load() != 2 {
		t.Fatalf("%d builds, want 2", builds.Load())
	}
	// A change through the console invalidates the snapshot.
	s.invalidate()
	get()
	release <- struct{}{}
	waitUntil(t, func() bool { return get() == 3 })
}

func waitUntil(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSnapshotSortedOrders(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	rows := []scheduler.ReportRow{
		{DeviceID: "a", SerialNumber: "Z", OSVersion: "15.10", Phase: softwareupdate.PhaseCompliant},
		{DeviceID: "b", SerialNumber: "X", OSVersion: "15.9", Phase: softwareupdate.PhasePending, Deadline: t0.Add(time.Hour)},
		{DeviceID: "c", SerialNumber: "Y", OSVersion: "14.6.1", Phase: softwareupdate.PhaseNotify, Deadline: t0},
	}
	s := &Snapshot{Report: &scheduler.ComplianceReport{Rows: rows}}
	for key, want := range map[string]string{"id": "abc", "serial": "bca", "os": "cba", "phase": "bca", "deadline": "cba"} {
		got := ""
		for _, i := range s.sorted(key) {
			got += rows[i].DeviceID
		}
		if got != want {
			t.Errorf("sorted by %s = %s, want %s", key, got, want)
		}
	}
}
