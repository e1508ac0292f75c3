package retention

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/internal/clock"
)

// pages is a hand-written RetentionStore: commands come in pages of
// batches, each taking cost to delete.
type pages struct {
	cost      time.Duration
	left      int
	histLeft  int
	before    time.Time
	calls     []time.Time
	histCalls int
}

func (p *pages) PruneCommands(ctx context.Context, before time.Time, after string, limit int) (int, string, error) {
	p.before = before
	p.calls = append(p.calls, time.Now())
	time.Sleep(p.cost)
	n := min(limit, p.left)
	p.left -= n
	if p.left == 0 {
		return n, "", nil
	}
	return n, strconv.Itoa(len(p.calls)), nil
}

func (p *pages) PruneHistory(ctx context.Context, keep int, after string, limit int) (int, string, error) {
	p.histCalls++
	n := min(limit, p.histLeft)
	p.histLeft -= n
	if p.histLeft == 0 {
		return n, "", nil
	}
	return n, "x", nil
}

// TestRunOncePacesItself: every batch runs, the cut-off is the clock's now
// minus retention, and each pause is at least nine times the batch's cost.
func TestRunOncePacesItself(t *testing.T) {
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	st := &pages{cost: 5 * time.Millisecond, left: 35, histLeft: 7}
	p := NewPruner(st, clock.NewFake(now), nil, DefaultRetainCommands, DefaultRetainHistory)
	p.Batch, p.MinPause = 10, time.Millisecond
	cmds, trans, err := p.RunOnce(t.Context())
	if err != nil || cmds != 35 || trans != 7 {
		t.Fatalf("RunOnce = %d, %d, %v", cmds, trans, err)
	}
	if want := now.Add(-DefaultRetainCommands); !st.before.Equal(want) {
		t.Errorf("cut-off = %s, want %s", st.before, want)
	}
	if len(st.calls) != 4 || st.histCalls != 7 { // history: a tenth of Batch, one Mac per call
		t.Fatalf("calls = %d commands, %d history", len(st.calls), st.histCalls)
	}
	for i := 1; i < len(st.calls); i++ {
		if gap := st.calls[i].Sub(st.calls[i-1]); gap < 10*st.cost {
			t.Errorf("batch %d started %s after the previous one, want at least %s (cost plus 9 × cost)", i, gap, 10*st.cost)
		}
	}
}

func TestRunOnceStopsWhenCancelled(t *testing.T) {
	st := &pages{cost: time.Millisecond, left: 1000}
	p := NewPruner(st, clock.NewFake(time.Now()), nil, DefaultRetainCommands, 0)
	p.Batch, p.MinPause = 1, time.Hour
	ctx, cancel := context.WithCancel(t.Context())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	if _, _, err := p.RunOnce(ctx); !errors.Is(err, context.Canceled) || len(st.calls) != 1 {
		t.Errorf("RunOnce after cancel = %v after %d batches", err, len(st.calls))
	}
}

func TestRunKeepsEverythingWhenAskedTo(t *testing.T) {
	st := &pages{left: 10}
	done := make(chan struct{})
	go func() { NewPruner(st, clock.NewFake(time.Now()), nil, 0, 0).Run(t.Context()); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run with nothing to prune did not return")
	}
	if len(st.calls) != 0 || st.histCalls != 0 {
		t.Errorf("pruned with retention off: %d, %d calls", len(st.calls), st.histCalls)
	}
}
