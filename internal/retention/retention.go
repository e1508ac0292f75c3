// Package retention deletes what Sundial keeps only for a while: finished
// commands and old update history, through storage.RetentionStore.
package retention

import (
	"context"
	"log/slog"
	"time"

	"github.com/sundial-mdm/sundial/storage"
)

// Pruner deletes finished commands and old update history, run by the
// scheduler leader (one replica). It works in small transactions and,
// after each, waits at least nine times as long as the transaction took,
// so that it holds bbolt's single writer (or PostgreSQL's row locks) at
// most a tenth of the time and check-ins barely wait behind it
// (docs/benchmarks.md, "Pruning and check-in latency").
type Pruner struct {
	store    storage.RetentionStore
	clock    interface{ Now() time.Time }
	log      *slog.Logger
	commands time.Duration // keep finished commands this long; 0: forever
	history  int           // keep this many transitions per Mac; 0: all

	// Batch is how many commands one transaction looks at (a tenth as
	// many Macs for history); MinPause the least wait between two.
	Batch    int
	MinPause time.Duration
	// Every is the time between runs.
	Every time.Duration
}

// Retention defaults: 90 days of finished commands and results, the last
// 1,000 transitions per Mac.
const (
	DefaultRetainCommands = 90 * 24 * time.Hour
	DefaultRetainHistory  = 1000
)

// NewPruner returns a Pruner that keeps finished commands for commands and
// the newest history transitions per Mac (0: keep all). A nil store or
// clock is a programming error; a nil log discards.
func NewPruner(store storage.RetentionStore, clock interface{ Now() time.Time }, log *slog.Logger, commands time.Duration, history int) *Pruner {
	if store == nil || clock == nil {
		panic("retention.NewPruner: store and clock are required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Pruner{store: store, clock: clock, log: log, commands: commands, history: history,
		Batch: 500, MinPause: 20 * time.Millisecond, Every: time.Hour}
}

// Run prunes at start and then every p.Every until ctx ends.
func (p *Pruner) Run(ctx context.Context) {
	if p.commands <= 0 && p.history <= 0 {
		return
	}
	t := time.NewTicker(p.Every)
	defer t.Stop()
	for {
		if _, _, err := p.RunOnce(ctx); err != nil && ctx.Err() == nil {
			p.log.Error("pruning old records failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RunOnce deletes everything past retention, batch by batch, and returns
// how many commands and transitions it deleted.
func (p *Pruner) RunOnce(ctx context.Context) (commands, transitions int, err error) {
	if p.commands > 0 {
		before := p.clock.Now().Add(-p.commands)
		n, err := p.loop(ctx, func(after string) (int, string, error) {
			return p.store.PruneCommands(ctx, before, after, p.Batch)
		})
		commands += n
		if err != nil {
			return commands, transitions, err
		}
	}
	if p.history > 0 {
		n, err := p.loop(ctx, func(after string) (int, string, error) {
			return p.store.PruneHistory(ctx, p.history, after, max(p.Batch/10, 1))
		})
		transitions += n
		if err != nil {
			return commands, transitions, err
		}
	}
	if commands > 0 || transitions > 0 {
		p.log.Info("pruned old records", "commands", commands, "transitions", transitions,
			"retain_commands", p.commands, "retain_history", p.history)
	}
	return commands, transitions, nil
}

// loop runs batch until its cursor comes back empty, pausing after each
// transaction nine times as long as it took (at least MinPause). The
// pause is paced on the real clock, not the injected one: it is about the
// work's cost, not about what is due.
func (p *Pruner) loop(ctx context.Context, batch func(after string) (int, string, error)) (int, error) {
	total := 0
	for after := ""; ; {
		start := time.Now()
		n, next, err := batch(after)
		if err != nil {
			return total, err
		}
		total += n
		if next == "" {
			return total, nil
		}
		after = next
		if err := sleep(ctx, max(p.MinPause, 9*time.Since(start))); err != nil {
			return total, err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
