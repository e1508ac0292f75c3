package main

import (
	"context"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"testing"
)

// runSimulate runs a.simulate with n Macs until the server holds want
// devices, then stops it and returns their IDs.
func runSimulate(t *testing.T, ts *testServer, n, want int) []string {
	t.Helper()
	u, err := url.Parse(ts.url)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := net.ResolveTCPAddr("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); ts.app.simulate(ctx, addr, n) }()
	var ids []string
	waitFor(t, func() bool {
		devs, err := ts.app.store.Devices(t.Context(), "", 100)
		if err != nil {
			t.Fatal(err)
		}
		ids = ids[:0]
		for _, d := range devs {
			if !d.EnrolledAt.IsZero() {
				ids = append(ids, d.ID)
			}
		}
		return len(ids) >= want
	})
	cancel()
	<-done
	return slices.Clone(ids)
}

// TestSimulateReusesFleet: `server --simulate N` restarted on the same
// data directory brings back the same Macs instead of enrolling N more.
func TestSimulateReusesFleet(t *testing.T) {
	dir := t.TempDir()
	ts := startTestServer(t, dir)
	first := runSimulate(t, ts, 3, 3)
	ts.stop()
	kept, err := loadSimulated(filepath.Join(dir, simulatedFile))
	if err != nil || len(kept) != 3 {
		t.Fatalf("kept Macs = %d, %v", len(kept), err)
	}
	ts = startTestServer(t, dir)
	second := runSimulate(t, ts, 4, 4)
	if len(second) != 4 {
		t.Fatalf("after a restart with --simulate 4 the server holds %d Macs, want 4 (3 kept + 1 new): %v", len(second), second)
	}
	for _, id := range first {
		if !slices.Contains(second, id) {
			t.Errorf("Mac %s was not reused: %v", id, second)
		}
	}
	if kept, _ := loadSimulated(filepath.Join(dir, simulatedFile)); len(kept) != 4 || kept[0].UDID != first[0] && !slices.Contains(first, kept[0].UDID) {
		t.Errorf("kept Macs after the restart = %+v", kept)
	}
}
