package procs

import (
	"context"
	"log/slog"
	"time"
)

// The garbage collector's CPU per allocated byte is inversely proportional
// to GOGC: each cycle marks the live heap, and the next starts after the
// program has allocated GOGC % of it again. Sundial's live heap is small
// (about 5 MB in the load test at 10,000 Macs: the database's pages are
// mapped, not on the heap) while an enrolment allocates about 0.6 MB, so
// with Go's default of 100 the collector runs many times a second under
// load, and at 200 an enrolment cost 8 % less CPU (docs/benchmarks.md). A
// higher GOGC costs memory in proportion to the live heap, though, which
// on a large fleet's server is no longer small. GCTuner raises GOGC only
// as far as a fixed amount of memory allows.

// DefaultGCHeadroom is the heap growth between collections that GCTuner
// allows above Go's default: with a GOGC of 200 the collector runs at that
// target while the live heap is under 12 MB, at Go's default of 100 from
// 24 MB up, and in between lets the heap grow 24 MB between collections.
// The memory this costs beyond Go's default is at most 12 MB.
const DefaultGCHeadroom = 24 << 20

// DefaultGCInterval is how often GCTuner reads the live heap.
const DefaultGCInterval = time.Second

// GCRuntime is the part of the process GCTuner reads and drives.
type GCRuntime interface {
	// LiveHeap is the heap the last collection found live, in bytes.
	LiveHeap() uint64
	// SetGCPercent sets GOGC.
	SetGCPercent(int)
}

// GCPercent is the GOGC that lets a live heap of live bytes grow by
// headroom between collections, within [100, ceiling]. A ceiling of 100
// or less is returned as it is.
func GCPercent(live, headroom uint64, ceiling int) int {
	if ceiling <= 100 || live == 0 {
		return ceiling
	}
	if p := headroom * 100 / live; p < uint64(ceiling) {
		return max(100, int(p))
	}
	return ceiling
}

// GCTuner keeps GOGC at GCPercent of the live heap.
type GCTuner struct {
	rt       GCRuntime
	ceiling  int
	headroom uint64
	interval time.Duration
	log      *slog.Logger
	percent  int // what the tuner last set; 0 before the first
}

// NewGCTuner returns a tuner with at most ceiling for GOGC, headroom bytes
// (0: DefaultGCHeadroom), reading the heap every interval (0:
// DefaultGCInterval).
func NewGCTuner(rt GCRuntime, ceiling int, headroom uint64, interval time.Duration, log *slog.Logger) *GCTuner {
	if headroom == 0 {
		headroom = DefaultGCHeadroom
	}
	if interval <= 0 {
		interval = DefaultGCInterval
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &GCTuner{rt: rt, ceiling: ceiling, headroom: headroom, interval: interval, log: log}
}

// Observe reads the live heap and sets GOGC if it should change. It
// returns the GOGC in force.
func (g *GCTuner) Observe() int {
	live := g.rt.LiveHeap()
	if p := GCPercent(live, g.headroom, g.ceiling); p != g.percent {
		g.rt.SetGCPercent(p)
		g.log.Debug("gc target set", "gogc", p, "live_heap_bytes", live)
		g.percent = p
	}
	return g.percent
}

// Run sets GOGC at once and then every interval until ctx ends.
func (g *GCTuner) Run(ctx context.Context) error {
	g.Observe()
	t := time.NewTicker(g.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			g.Observe()
		}
	}
}
