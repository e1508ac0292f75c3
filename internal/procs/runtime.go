package procs

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"github.com/sundial-mdm/sundial/internal/cputime"
)

// Process is the running process's Runtime.
type Process struct{}

// CPUTime returns the process's user and system CPU time.
func (Process) CPUTime() (time.Duration, error) { return cputime.Read() }

// Procs returns runtime.GOMAXPROCS(0).
func (Process) Procs() int { return runtime.GOMAXPROCS(0) }

// SetProcs sets GOMAXPROCS, or returns it to the default (which the runtime
// then keeps up to date with the CPU limit) when n is 0.
func (Process) SetProcs(n int) {
	if n <= 0 {
		runtime.SetDefaultGOMAXPROCS()
		return
	}
	runtime.GOMAXPROCS(n)
}

// liveHeapMetric is the heap marked live by the last collection.
const liveHeapMetric = "/gc/heap/live:bytes"

// LiveHeap reads the live heap from runtime/metrics. A runtime without
// the metric reports a heap too large for anything but Go's default.
func (Process) LiveHeap() uint64 {
	s := []metrics.Sample{{Name: liveHeapMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return math.MaxUint64
	}
	return s[0].Value.Uint64()
}

// SetGCPercent sets GOGC.
func (Process) SetGCPercent(p int) { debug.SetGCPercent(p) }
