// Package procs sizes the Go scheduler's parallelism (GOMAXPROCS) to the
// server's load, and the garbage collector's target (GOGC) to its heap
// (gc.go).
//
// An MDM server spends most of its life lightly loaded: thousands of Macs
// each send a small signed request now and then, and most requests find the
// server idle. With more than one P, every goroutine that becomes runnable
// while a P is idle wakes another OS thread, which spins looking for work and
// goes back to sleep; each blocking system call (an fsync) hands its P to yet
// another thread. On the 2-vCPU VM of docs/benchmarks.md that bookkeeping
// was 6–23 % of the server's CPU per request at 10,000 Macs. The Governor
// runs the scheduler with one P while the process uses less than one CPU,
// and gives it every CPU again within one sampling interval of needing more.
package procs

import (
	"context"
	"log/slog"
	"time"
)

// Runtime is the part of the process the governor reads and drives.
type Runtime interface {
	// CPUTime is the process's CPU time so far, user and system.
	CPUTime() (time.Duration, error)
	// Procs is the current GOMAXPROCS.
	Procs() int
	// SetProcs sets GOMAXPROCS to n; 0 returns it to the runtime's default.
	SetProcs(n int)
}

// Thresholds, in CPUs used over a sampling interval. One P does the same
// work with 15–25 % less CPU than two, so a load of 0.7 CPUs with one P is
// about 0.85 with two; the gap between the thresholds keeps a steady load
// from flapping between the settings.
const (
	// RaiseAbove: with one P, using more than this raises GOMAXPROCS back to
	// its default at once: the single P is close to saturated and requests
	// start to queue behind one another.
	RaiseAbove = 0.9
	// LowerBelow: with the default, using less than this for LowerAfter
	// intervals in a row lowers GOMAXPROCS to one.
	LowerBelow = 0.8
	// LowerAfter is how many light intervals in a row lower GOMAXPROCS.
	LowerAfter = 8
	// DefaultInterval is how often CPU use is sampled.
	DefaultInterval = 250 * time.Millisecond
)

// Governor switches GOMAXPROCS between one and the runtime's default.
type Governor struct {
	rt       Runtime
	log      *slog.Logger
	interval time.Duration

	max   int // the default, read when it was last in force
	procs int // what the governor last set (or found)
	light int // light intervals in a row
}

// New returns a governor for rt sampling every interval (0: DefaultInterval).
// rt's GOMAXPROCS must be its default when New is called.
func New(rt Runtime, interval time.Duration, log *slog.Logger) *Governor {
	if interval <= 0 {
		interval = DefaultInterval
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := rt.Procs()
	return &Governor{rt: rt, log: log, interval: interval, max: n, procs: n}
}

// Procs is the GOMAXPROCS the governor last chose.
func (g *Governor) Procs() int { return g.procs }

// Observe takes the CPU time used over wall time and applies the setting
// that load calls for. It returns the GOMAXPROCS now in force.
func (g *Governor) Observe(used, wall time.Duration) int {
	if wall <= 0 || g.max <= 1 {
		return g.procs
	}
	cpus := used.Seconds() / wall.Seconds()
	switch {
	case g.procs < g.max && cpus > RaiseAbove:
		g.rt.SetProcs(0)
		n := g.rt.Procs() // the default may have moved with the CPU limit
		g.procs, g.max, g.light = n, n, 0
		g.log.Debug("scheduler parallelism raised", "gomaxprocs", g.procs, "cpus_used", cpus)
	case g.procs > 1 && cpus < LowerBelow:
		g.light++
		if g.light >= LowerAfter {
			g.rt.SetProcs(1)
			g.procs, g.light = 1, 0
			g.log.Debug("scheduler parallelism lowered", "gomaxprocs", 1, "cpus_used", cpus)
		}
	default:
		g.light = 0
	}
	return g.procs
}

// Run samples the process's CPU time every interval until ctx ends, then
// returns GOMAXPROCS to its default. A runtime with one CPU is left alone.
func (g *Governor) Run(ctx context.Context) error {
	if g.max <= 1 {
		return nil
	}
	defer func() {
		if g.procs != g.max {
			g.rt.SetProcs(0)
			g.procs = g.rt.Procs()
		}
	}()
	last, err := g.rt.CPUTime()
	if err != nil {
		return err
	}
	lastAt := time.Now()
	t := time.NewTicker(g.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			cpu, err := g.rt.CPUTime()
			if err != nil {
				return err
			}
			g.Observe(cpu-last, now.Sub(lastAt))
			last, lastAt = cpu, now
		}
	}
}
