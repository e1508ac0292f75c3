// Package cputime reads the CPU time used by this process, for benchmarks
// that report a figure independent of how busy the machine is.
package cputime

import "time"

// Process returns the user plus system CPU time used by this process so
// far, or 0 where the platform does not tell.
func Process() time.Duration { return process() }
