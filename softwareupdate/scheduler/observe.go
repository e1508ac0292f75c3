package scheduler

import "time"

// PassObserver is told about each pass Run makes: its stats, how long it
// took by the scheduler's clock, and its error (nil on success). It is
// called on the scheduler's goroutine and must not block.
type PassObserver func(st Stats, took time.Duration, err error)

// WithPassObserver sets the pass observer (metrics).
func WithPassObserver(o PassObserver) Option { return func(s *Scheduler) { s.observe = o } }
