package scheduler

// SetLeader marks s as the scheduler that runs passes (what Run does), so
// tests can drive RunOnce by hand with the leader's event handling.
func SetLeader(s *Scheduler, on bool) { s.running.Store(on) }

// Awaiting counts the devices whose first evaluation waits for inventory.
func Awaiting(s *Scheduler) int {
	s.evMu.Lock()
	defer s.evMu.Unlock()
	return len(s.awaiting)
}
