package main

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/internal/retention"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// TestPrunerKeepsRetention runs the leader's pruner on a live server's
// store, 91 days on: the Mac's finished commands go, its queued one and
// its state stay, its history is cut to the newest 1,000 transitions, and
// the Mac keeps working.
func TestPrunerKeepsRetention(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	mac := ts.enroll(t)
	if _, err := mac.Connect(t.Context()); err != nil { // answers DeviceInformation
		t.Fatal(err)
	}
	ctx := t.Context()
	before, err := ts.app.store.Commands(ctx, mac.UDID)
	if err != nil || len(before) == 0 {
		t.Fatalf("commands before = %d, %v", len(before), err)
	}
	var finished int
	for _, c := range before {
		if c.Status != "Queued" && c.Status != "NotNow" {
			finished++
		}
	}
	c := scheduler.Commit{State: &scheduler.State{DeviceID: mac.UDID}}
	sts, err := ts.app.store.States(ctx, []string{mac.UDID})
	if err == nil && len(sts) == 1 && sts[0] != nil {
		c.State = sts[0]
	}
	for i := range 1050 {
		c.History = append(c.History, scheduler.Transition{At: time.Now(), Kind: scheduler.EventReset, Reason: fmt.Sprintf("r%04d", i)})
	}
	if err := ts.app.store.Commit(ctx, []scheduler.Commit{c}, time.Now()); err != nil {
		t.Fatal(err)
	}
	pending, err := mdm.NewCommand("ProfileList", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.app.svc.Enqueue(ctx, []string{mac.UDID}, pending); err != nil {
		t.Fatal(err)
	}
	queued := pending.UUID
	p := retention.NewPruner(ts.app.store, clock.NewFake(time.Now().Add(91*24*time.Hour)), slog.New(slog.DiscardHandler), retention.DefaultRetainCommands, retention.DefaultRetainHistory)
	p.Batch, p.MinPause = 2, time.Millisecond // several batches
	cmds, trans, err := p.RunOnce(ctx)
	if err != nil || cmds != finished || trans < 50 {
		t.Fatalf("RunOnce = %d commands, %d transitions, %v; want %d commands and at least 50 transitions", cmds, trans, err, finished)
	}
	after, err := ts.app.store.Commands(ctx, mac.UDID)
	if err != nil || len(after) != 1 || after[0].UUID != queued {
		t.Errorf("commands after pruning = %+v, %v; want only the queued %s", after, err, queued)
	}
	// The server's own scheduler may evaluate the Mac at any time and
	// append its transitions after ours: r1049 must be kept, the cap must
	// have cut the oldest of ours, and only the scheduler's entries may
	// stand beyond the cap.
	h, err := ts.app.store.History(ctx, mac.UDID, 0)
	if err != nil {
		t.Fatal(err)
	}
	newest, oldest := -1, ""
	for i, tr := range h {
		var n int
		if _, err := fmt.Sscanf(tr.Reason, "r%04d", &n); err == nil && len(tr.Reason) == 5 && tr.Kind == scheduler.EventReset {
			if oldest == "" {
				oldest = tr.Reason
			}
			newest = i
		}
	}
	// Ours, and whatever stands before them, fit in the cap, and the cap
	// is full: the pruner cut no more than it had to.
	if newest < 0 || h[newest].Reason != "r1049" || oldest < "r0050" ||
		newest+1 > retention.DefaultRetainHistory || len(h) < retention.DefaultRetainHistory {
		t.Errorf("history after pruning: %d entries, ours from %s to index %d", len(h), oldest, newest)
	}
	if _, err := mac.Connect(ctx); err != nil { // answers ProfileList
		t.Fatalf("the Mac after pruning: %v", err)
	}
	if rec, err := ts.app.store.Command(ctx, mac.UDID, queued); err != nil || rec.Status != "Acknowledged" {
		t.Errorf("the kept command after the Mac answered: %+v, %v", rec, err)
	}
	// Only what finished since (its updated time is real, so 91 days
	// before the pruner's clock) goes next, and only the history the
	// server's own scheduler may have added since goes beyond the cap.
	// The server's scheduler evaluates the Mac after its answer: wait
	// until its history stops growing.
	for n := -1; ; time.Sleep(200 * time.Millisecond) {
		if h, err = ts.app.store.History(ctx, mac.UDID, 0); err != nil {
			t.Fatal(err)
		}
		if len(h) == n {
			break
		}
		n = len(h)
	}
	over := max(0, len(h)-retention.DefaultRetainHistory)
	if cmds, trans, err := p.RunOnce(ctx); cmds != 1 || trans != over || err != nil {
		t.Errorf("second RunOnce = %d, %d, %v; want 1 command and %d transitions", cmds, trans, err, over)
	}
}

func TestRetentionFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--retain-commands", "12h"}, "--retain-commands"},
		{[]string{"--retain-commands", "ninety"}, "retain-commands"},
		{[]string{"--retain-history", "5"}, "--retain-history"},
	} {
		r := runArgs(t, append([]string{"server", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0"}, tc.args...))
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("server %v = %+v", tc.args, r)
		}
	}
	var d daysValue
	if err := d.Set("30d"); err != nil || time.Duration(d) != 30*24*time.Hour || d.String() != "30d" {
		t.Errorf("30d = %v, %v", time.Duration(d), err)
	}
}
