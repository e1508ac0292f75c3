package main

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/sundial-mdm/sundial/storage"
)

// pruner deletes finished commands and old update history on the
// scheduler leader (one replica), in small batches with a pause between
// them so that Macs' check-ins never wait behind it (docs/benchmarks.md).
type pruner struct {
	store    storage.RetentionStore
	clock    Clock
	log      *slog.Logger
	commands time.Duration // keep finished commands this long; 0: forever
	history  int           // keep this many transitions per Mac; 0: all
	batch    int           // commands (or Macs, a tenth) per transaction
	pause    time.Duration // between batches
	every    time.Duration // between runs
}

// Retention defaults (issue 25): 90 days of finished commands and results,
// the last 1,000 transitions per Mac.
const (
	DefaultRetainCommands = 90 * 24 * time.Hour
	DefaultRetainHistory  = 1000
)

func newPruner(store storage.RetentionStore, clk Clock, log *slog.Logger, commands time.Duration, history int) *pruner {
	return &pruner{store: store, clock: clk, log: log, commands: commands, history: history,
		batch: 500, pause: 20 * time.Millisecond, every: time.Hour}
}

// Run prunes at start and then every p.every until ctx ends.
func (p *pruner) Run(ctx context.Context) {
	if p.commands <= 0 && p.history <= 0 {
		return
	}
	t := time.NewTicker(p.every)
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
func (p *pruner) RunOnce(ctx context.Context) (commands, transitions int, err error) {
	if p.commands > 0 {
		before := p.clock.Now().Add(-p.commands)
		for after := ""; ; {
			n, next, err := p.store.PruneCommands(ctx, before, after, p.batch)
			if err != nil {
				return commands, transitions, err
			}
			commands += n
			if next == "" {
				break
			}
			after = next
			if err := sleep(ctx, p.pause); err != nil {
				return commands, transitions, err
			}
		}
	}
	if p.history > 0 {
		for after := ""; ; {
			n, next, err := p.store.PruneHistory(ctx, p.history, after, max(p.batch/10, 1))
			if err != nil {
				return commands, transitions, err
			}
			transitions += n
			if next == "" {
				break
			}
			after = next
			if err := sleep(ctx, p.pause); err != nil {
				return commands, transitions, err
			}
		}
	}
	if commands > 0 || transitions > 0 {
		p.log.Info("pruned old records", "commands", commands, "transitions", transitions,
			"retain_commands", p.commands, "retain_history", p.history)
	}
	return commands, transitions, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// daysValue is a duration flag that also takes whole days ("90d").
type daysValue time.Duration

func (d *daysValue) String() string {
	v := time.Duration(*d)
	if v%(24*time.Hour) == 0 {
		return strconv.Itoa(int(v/(24*time.Hour))) + "d"
	}
	return v.String()
}

func (d *daysValue) Set(s string) error {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 {
			return fmt.Errorf("%q: want a number of days such as 90d, or a duration such as 2160h", s)
		}
		*d = daysValue(time.Duration(days) * 24 * time.Hour)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("%q: want a number of days such as 90d, or a duration such as 2160h", s)
	}
	*d = daysValue(v)
	return nil
}

func (d *daysValue) Type() string { return "days" }
