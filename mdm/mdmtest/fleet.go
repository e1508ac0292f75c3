package mdmtest

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Fleet drives many simulated Macs with a bounded number of workers and
// collects per-operation latency statistics.
type Fleet struct {
	Devices []*Device
	// Workers bounds concurrent device operations (default 16).
	Workers int

	stats *Stats
}

// NewFleet creates n devices with opts (every device gets the same options,
// so avoid identity options like WithUDID). Each device records its
// latencies into the fleet's Stats.
func NewFleet(n int, opts ...Option) (*Fleet, error) {
	if n < 0 {
		return nil, fmt.Errorf("mdmtest: fleet size %d < 0", n)
	}
	f := &Fleet{Workers: 16, stats: NewStats()}
	all := append(slices.Clip(opts), WithRecorder(f.stats))
	f.Devices = make([]*Device, n)
	for i := range n {
		d, err := New(all...)
		if err != nil {
			return nil, err
		}
		f.Devices[i] = d
	}
	return f, nil
}

// Stats returns the fleet's latency statistics.
func (f *Fleet) Stats() *Stats { return f.stats }

// FleetError reports the devices that failed a fleet operation.
type FleetError struct {
	Op     string
	Failed int
	Total  int
	Errs   []error // the first few errors
}

// Error summarises the failures.
func (e *FleetError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "mdmtest: fleet %s: %d of %d devices failed", e.Op, e.Failed, e.Total)
	if len(e.Errs) > 0 {
		fmt.Fprintf(&b, "; first: %v", e.Errs[0])
	}
	return b.String()
}

// Unwrap returns the sampled errors.
func (e *FleetError) Unwrap() []error { return e.Errs }

// Each runs fn for every device with at most Workers at a time. It returns a
// *FleetError if any call failed, or ctx's error if ctx ended first.
func (f *Fleet) Each(ctx context.Context, op string, fn func(ctx context.Context, d *Device) error) error {
	workers := f.Workers
	if workers < 1 {
		workers = 1
	}
	var (
		mu   sync.Mutex
		ferr = &FleetError{Op: op, Total: len(f.Devices)}
		wg   sync.WaitGroup
		next = make(chan *Device)
	)
	for range min(workers, len(f.Devices)) {
		wg.Go(func() {
			for d := range next {
				if err := fn(ctx, d); err != nil {
					mu.Lock()
					ferr.Failed++
					if len(ferr.Errs) < 10 {
						ferr.Errs = append(ferr.Errs, fmt.Errorf("device %s: %w", d.UDID, err))
					}
					mu.Unlock()
				}
			}
		})
	}
feed:
	for _, d := range f.Devices {
		select {
		case next <- d:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mdmtest: fleet %s: %w", op, err)
	}
	if ferr.Failed > 0 {
		return ferr
	}
	return nil
}

// Enroll enrolls every device with the profile at profileURL.
func (f *Fleet) Enroll(ctx context.Context, c *http.Client, profileURL string) error {
	return f.Each(ctx, "enroll", func(ctx context.Context, d *Device) error {
		return d.Enroll(ctx, c, profileURL)
	})
}

// Connect runs one command-channel session for every device and returns the
// number of commands answered.
func (f *Fleet) Connect(ctx context.Context) (commands int, err error) {
	var mu sync.Mutex
	err = f.Each(ctx, "connect", func(ctx context.Context, d *Device) error {
		s, err := d.Connect(ctx)
		mu.Lock()
		commands += len(s.Commands)
		mu.Unlock()
		return err
	})
	return commands, err
}

// Stats collects latencies per operation. It implements Recorder and is
// safe for concurrent use.
type Stats struct {
	mu  sync.Mutex
	ops map[string]*opSamples
}

type opSamples struct {
	took   []time.Duration
	errors int
}

// NewStats returns empty statistics.
func NewStats() *Stats { return &Stats{ops: make(map[string]*opSamples)} }

// Record adds one sample.
func (s *Stats) Record(op string, took time.Duration, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.ops[op]
	if o == nil {
		o = &opSamples{}
		s.ops[op] = o
	}
	o.took = append(o.took, took)
	if err != nil {
		o.errors++
	}
}

// Reset drops every sample.
func (s *Stats) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ops = make(map[string]*opSamples)
}

// OpStats summarises one operation's latencies.
type OpStats struct {
	Op                  string
	Count, Errors       int
	Min, Mean, P50, P90 time.Duration
	P99, Max            time.Duration
	Total               time.Duration
}

// String formats the statistics on one line.
func (o OpStats) String() string {
	return fmt.Sprintf("%-22s n=%-6d err=%-4d min=%-9v mean=%-9v p50=%-9v p90=%-9v p99=%-9v max=%v",
		o.Op, o.Count, o.Errors, o.Min, o.Mean, o.P50, o.P90, o.P99, o.Max)
}

// Summary returns one OpStats per operation, sorted by name.
func (s *Stats) Summary() []OpStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]OpStats, 0, len(s.ops))
	for op, o := range s.ops {
		if len(o.took) == 0 {
			continue
		}
		t := slices.Clone(o.took)
		slices.Sort(t)
		var total time.Duration
		for _, x := range t {
			total += x
		}
		pct := func(p float64) time.Duration { return t[min(len(t)-1, int(p*float64(len(t))))] }
		out = append(out, OpStats{
			Op: op, Count: len(t), Errors: o.errors, Total: total,
			Min: t[0], Max: t[len(t)-1], Mean: total / time.Duration(len(t)),
			P50: pct(0.50), P90: pct(0.90), P99: pct(0.99),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Op < out[j].Op })
	return out
}

var _ Recorder = (*Stats)(nil)
