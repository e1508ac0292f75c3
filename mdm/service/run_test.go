package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm/service"
)

// TestRunFlushesAfterCheckin: Run sleeps while nothing was seen, and
// writes a check-in's last-seen time within the flush interval of it.
func TestRunFlushesAfterCheckin(t *testing.T) {
	svc, store, clk := newTestService(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); svc.Run(ctx, 50*time.Millisecond) }()
	defer func() { cancel(); <-done }()

	who := service.Identity{CertHash: "cert", NotAfter: clk.Now().AddDate(1, 0, 0)}
	if _, err := svc.Checkin(ctx, who, authenticate("MAC")); err != nil {
		t.Fatal(err)
	}
	for round := range 2 { // a second check-in after a flush is flushed too
		clk.Advance(time.Hour)
		seen := clk.Now()
		if _, err := svc.Checkin(ctx, who, tokenUpdate("MAC")); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			d, err := store.Device(ctx, "MAC")
			if err != nil {
				t.Fatal(err)
			}
			if d.LastSeen.Equal(seen) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: last seen %v, want %v within the flush interval", round, d.LastSeen, seen)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
