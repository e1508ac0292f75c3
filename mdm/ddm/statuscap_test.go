package ddm_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/ddm"
)

// TestStatusRecordBounded: a Mac sending incremental status reports full of
// items nobody asked for cannot grow its stored record past its bounds, keeps
// the items Sundial reads, and does not slow down another Mac's status
// reports while it floods.
func TestStatusRecordBounded(t *testing.T) {
	clk := clock.NewFake(t0)
	store := newStore(t)
	s := ddm.New(store, &queue{}, clk)
	ctx := t.Context()
	// The other Mac also checks in (TokenUpdate) against the same database.
	checkin := func() error {
		_, err := store.TokenUpdate(ctx, "OTHER", &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: "OTHER"}, MessageType: mdm.TokenUpdate,
			Topic: "com.apple.mgmt.test", Token: []byte("tok"), PushMagic: "magic"}, nil, t0)
		return err
	}
	if err := store.Authenticate(ctx, "OTHER", &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: "OTHER"}, MessageType: mdm.Authenticate,
		Topic: "com.apple.mgmt.test"}, "cert-OTHER", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Declarative(ctx, "FLOOD", "status", report(true, map[string]any{ddm.ItemOSVersion: "15.3.1", ddm.ItemBuildVersion: "24D70"})); err != nil {
		t.Fatal(err)
	}
	small := report(false, map[string]any{ddm.ItemInstallState: "none"})
	// The other Mac's report time before the flood.
	base := time.Now()
	for range 20 {
		if _, err := s.Declarative(ctx, "OTHER", "status", small); err != nil {
			t.Fatal(err)
		}
	}
	baseline := time.Since(base) / 20
	base = time.Now()
	for range 20 {
		if err := checkin(); err != nil {
			t.Fatal(err)
		}
	}
	checkinBase := time.Since(base) / 20

	const reports, perReport = 40, 1500
	filler := strings.Repeat("x", 150)
	var wg sync.WaitGroup
	var worst, worstCheckin time.Duration
	done := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			start := time.Now()
			if _, err := s.Declarative(ctx, "OTHER", "status", small); err != nil {
				t.Error(err)
				return
			}
			worst = max(worst, time.Since(start))
			start = time.Now()
			if err := checkin(); err != nil {
				t.Error(err)
				return
			}
			worstCheckin = max(worstCheckin, time.Since(start))
			time.Sleep(2 * time.Millisecond)
		}
	})
	for i := range reports {
		items := make(map[string]any, perReport)
		for j := range perReport {
			items[fmt.Sprintf("vendor.junk.r%d.i%d", i, j)] = filler
		}
		if _, err := s.Declarative(ctx, "FLOOD", "status", report(false, items)); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()

	rec, err := s.Record(ctx, "FLOOD")
	if err != nil {
		t.Fatal(err)
	}
	size := 0
	for k, v := range rec.Status.Items {
		size += len(k) + len(v)
	}
	if n := len(rec.Status.Items); n > 512 || size > 128<<10 {
		t.Errorf("merged record: %d items, %d bytes; want at most 512 and 128 KiB", n, size)
	}
	if rec.Status.Current.OSVersion != "15.3.1" || rec.Status.Current.BuildVersion != "24D70" {
		t.Errorf("known items dropped: current = %+v", rec.Status.Current)
	}
	t.Logf("other Mac's status report: %v before, worst %v during the flood", baseline, worst)
	// Generous for a shared CI machine; unbounded records took 1.5 s.
	if limit := max(50*baseline, 500*time.Millisecond); worst > limit && !raceEnabled {
		t.Errorf("other Mac's status report took %v during the flood (baseline %v)", worst, baseline)
	}
	t.Logf("other Mac's TokenUpdate: %v before, worst %v during the flood", checkinBase, worstCheckin)
	if limit := max(50*checkinBase, 500*time.Millisecond); worstCheckin > limit && !raceEnabled {
		t.Errorf("other Mac's TokenUpdate took %v during the flood (baseline %v)", worstCheckin, checkinBase)
	}
}
