package procs

import (
	"runtime"
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
