package scheduler

import (
	"context"

	"github.com/sundial-mdm/sundial/softwareupdate"
)

// GroupPhase is one evaluated Mac's group and phase: all the ring gates'
// tally needs of its state.
type GroupPhase struct {
	DeviceID string
	GroupID  string
	Phase    softwareupdate.Phase
}

// GroupPhaseStore lists every evaluated Mac's group and phase, in device
// ID order after after, up to limit, without decoding whole states. The
// gates' re-tally reads the fleet through it when the store has it (a
// fifth of a due pass at 100,000 Macs otherwise; docs/benchmarks.md).
type GroupPhaseStore interface {
	GroupPhases(ctx context.Context, after string, limit int) ([]GroupPhase, error)
}

// WithGroupPhases sets where the tally reads groups and phases, for a
// Store that wraps the real one.
func WithGroupPhases(gp GroupPhaseStore) Option { return func(s *Scheduler) { s.groupPhases = gp } }

func (s *Scheduler) groupPhaseStore() GroupPhaseStore {
	if s.groupPhases != nil {
		return s.groupPhases
	}
	gp, _ := s.store.(GroupPhaseStore)
	return gp
}

// tallyPhases adds every evaluated Mac's phase to its group's tally, from
// the store's group and phase listing.
func (s *Scheduler) tallyPhases(ctx context.Context, gp GroupPhaseStore, out map[string]*RingTally) error {
	for after := ""; ; {
		page, err := gp.GroupPhases(ctx, after, s.batch)
		if err != nil {
			return err
		}
		for _, p := range page {
			if t := out[p.GroupID]; t != nil {
				t.Add(p.Phase)
			}
		}
		if len(page) < s.batch || len(page) == 0 {
			return nil
		}
		after = page[len(page)-1].DeviceID
	}
}
