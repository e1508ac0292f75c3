package storagetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// RetentionBackend is what RunRetention tests: pruning, plus the queue and
// update history it prunes.
type RetentionBackend interface {
	storage.All
	storage.RetentionStore
	scheduler.Store
}

// RunRetention runs the retention conformance suite. newStore must return
// an empty store; the suite closes it.
func RunRetention(t *testing.T, newStore func(t *testing.T) RetentionBackend) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s RetentionBackend)
	}{
		{"PruneCommands", testPruneCommands},
		{"PruneBulkCommand", testPruneBulkCommand},
		{"PruneHistory", testPruneHistory},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

// pruneAll runs prune in batches until its cursor comes back empty and
// returns the total deleted and the number of batches.
func pruneAll(t *testing.T, prune func(after string) (int, string, error)) (total, batches int) {
	t.Helper()
	after := ""
	for {
		n, next, err := prune(after)
		if err != nil {
			t.Fatal(err)
		}
		total += n
		batches++
		if next == "" {
			return total, batches
		}
		if next == after || batches > 1000 {
			t.Fatalf("prune does not advance: cursor %q", next)
		}
		after = next
	}
}

func testPruneCommands(t *testing.T, s RetentionBackend) {
	ctx := context.Background()
	enroll(t, s, "AAA-1", "h1")
	enroll(t, s, "BBB-2", "h2")
	var cmds []*mdm.Command
	for i := range 6 {
		c := cmd(t, "DeviceInformation")
		if err := s.Enqueue(ctx, []string{"AAA-1"}, c, t0.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	other := cmd(t, "ProfileList")
	if err := s.Enqueue(ctx, []string{"BBB-2"}, other, t0); err != nil {
		t.Fatal(err)
	}
	at := t0.Add(time.Hour)
	// 0–2 and BBB-2's finish an hour in; 3 is answered NotNow (still
	// queued); 4 stays queued; 5 finishes after the cut-off.
	mustNext(t, s, "AAA-1", idle("AAA-1"), at)
	for _, i := range []int{0, 1} {
		mustNext(t, s, "AAA-1", report("AAA-1", cmds[i].UUID, mdm.Acknowledged), at)
	}
	mustNext(t, s, "AAA-1", report("AAA-1", cmds[2].UUID, mdm.Error), at)
	mustNext(t, s, "AAA-1", report("AAA-1", cmds[3].UUID, mdm.NotNow), at)
	mustNext(t, s, "BBB-2", report("BBB-2", other.UUID, mdm.Acknowledged), at)
	mustNext(t, s, "AAA-1", report("AAA-1", cmds[5].UUID, mdm.Acknowledged), t0.Add(3*time.Hour))

	before := t0.Add(2 * time.Hour)
	total, batches := pruneAll(t, func(after string) (int, string, error) { return s.PruneCommands(ctx, before, after, 2) })
	if total != 4 || batches < 2 {
		t.Errorf("pruned %d commands in %d batches, want 4 in several", total, batches)
	}
	for i, c := range cmds {
		_, err := s.Command(ctx, "AAA-1", c.UUID)
		if gone := errors.Is(err, storage.ErrNotFound); gone != (i <= 2) {
			t.Errorf("command %d: Command err = %v, want pruned = %v", i, err, i <= 2)
		}
	}
	if _, err := s.Command(ctx, "BBB-2", other.UUID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("BBB-2's finished command: %v", err)
	}
	recs, err := s.Commands(ctx, "AAA-1")
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, r := range recs {
		left = append(left, r.UUID)
	}
	if want := []string{cmds[3].UUID, cmds[4].UUID, cmds[5].UUID}; fmt.Sprint(left) != fmt.Sprint(want) {
		t.Errorf("commands left = %v, want %v", left, want)
	}
	// The queue still works: the pending commands are delivered.
	if have := uuidOf(mustNext(t, s, "AAA-1", idle("AAA-1"), t0.Add(4*time.Hour))); have != cmds[3].UUID {
		t.Errorf("next after pruning = %s, want %s", have, cmds[3].UUID)
	}
	if total, _ := pruneAll(t, func(after string) (int, string, error) { return s.PruneCommands(ctx, before, after, 2) }); total != 0 {
		t.Errorf("second prune deleted %d", total)
	}
	if _, _, err := s.PruneCommands(ctx, before, "", 0); err == nil {
		t.Error("PruneCommands with limit 0 succeeded")
	}
}

// testPruneBulkCommand prunes one Mac's copy of a command queued for
// several at once: the others keep their body, delivered and read back
// whole, until each is pruned in turn.
func testPruneBulkCommand(t *testing.T, s RetentionBackend) {
	ctx := context.Background()
	ids := []string{"AAA-1", "BBB-2", "CCC-3"}
	for i, id := range ids {
		enroll(t, s, id, fmt.Sprintf("h%d", i))
	}
	c := cmd(t, "ProfileList")
	if err := s.Enqueue(ctx, ids, c, t0); err != nil {
		t.Fatal(err)
	}
	// AAA-1, whose copy was queued first, finishes an hour in; BBB-2
	// three hours in; CCC-3 never answers.
	mustNext(t, s, "AAA-1", report("AAA-1", c.UUID, mdm.Acknowledged), t0.Add(time.Hour))
	mustNext(t, s, "BBB-2", report("BBB-2", c.UUID, mdm.Acknowledged), t0.Add(3*time.Hour))
	prune := func(before time.Time) int {
		total, _ := pruneAll(t, func(after string) (int, string, error) { return s.PruneCommands(ctx, before, after, 2) })
		return total
	}
	if n := prune(t0.Add(2 * time.Hour)); n != 1 {
		t.Fatalf("first prune deleted %d, want AAA-1's", n)
	}
	if _, err := s.Command(ctx, "AAA-1", c.UUID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("AAA-1's pruned command: %v", err)
	}
	rec, err := s.Command(ctx, "BBB-2", c.UUID)
	if err != nil {
		t.Fatal(err)
	}
	if string(rec.Raw) != string(c.Raw) {
		t.Errorf("BBB-2's body after AAA-1's was pruned = %q, want %q", rec.Raw, c.Raw)
	}
	next := mustNext(t, s, "CCC-3", idle("CCC-3"), t0.Add(4*time.Hour))
	if next == nil || string(next.Raw) != string(c.Raw) {
		t.Fatalf("CCC-3 is sent %+v, want the whole command", next)
	}
	if n := prune(t0.Add(5 * time.Hour)); n != 1 {
		t.Fatalf("second prune deleted %d, want BBB-2's", n)
	}
	if rec, err := s.Command(ctx, "CCC-3", c.UUID); err != nil || string(rec.Raw) != string(c.Raw) {
		t.Errorf("CCC-3's pending command after the others were pruned: %v", err)
	}
	mustNext(t, s, "CCC-3", report("CCC-3", c.UUID, mdm.Acknowledged), t0.Add(6*time.Hour))
	if n := prune(t0.Add(7 * time.Hour)); n != 1 {
		t.Fatalf("last prune deleted %d, want CCC-3's", n)
	}
	for _, id := range ids {
		if _, err := s.Command(ctx, id, c.UUID); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s's command after all were pruned: %v", id, err)
		}
	}
}

func testPruneHistory(t *testing.T, s RetentionBackend) {
	ctx := context.Background()
	for id, n := range map[string]int{"D1": 30, "D2": 5, "D3": 0, "D10": 12} {
		c := scheduler.Commit{State: &scheduler.State{DeviceID: id}}
		for i := range n {
			c.History = append(c.History, scheduler.Transition{At: t0.Add(time.Duration(i) * time.Minute), Kind: scheduler.EventReset, Reason: fmt.Sprintf("t%02d", i)})
		}
		if err := s.Commit(ctx, []scheduler.Commit{c}, t0); err != nil {
			t.Fatal(err)
		}
	}
	total, batches := pruneAll(t, func(after string) (int, string, error) { return s.PruneHistory(ctx, 10, after, 1) })
	if total != 20+2 || batches < 4 {
		t.Errorf("pruned %d transitions in %d batches, want 22 in at least 4", total, batches)
	}
	for id, want := range map[string][]string{"D1": {"t20", "t29"}, "D2": {"t00", "t04"}, "D10": {"t02", "t11"}} {
		h, err := s.History(ctx, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		n := map[string]int{"D1": 10, "D2": 5, "D10": 10}[id]
		if len(h) != n || h[0].Reason != want[0] || h[len(h)-1].Reason != want[1] {
			t.Errorf("%s history after pruning: %d entries %v", id, len(h), h)
		}
	}
	// New transitions append after the kept ones.
	sts, err := s.States(ctx, []string{"D1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, []scheduler.Commit{{State: sts[0], History: []scheduler.Transition{{At: t0.Add(time.Hour), Kind: scheduler.EventReset, Reason: "later"}}}}, t0); err != nil {
		t.Fatal(err)
	}
	if h, _ := s.History(ctx, "D1", 0); len(h) != 11 || h[10].Reason != "later" {
		t.Errorf("D1 history after a new commit: %v", h)
	}
}
