package scheduler

import (
	"errors"
	"fmt"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate"
)

// Health-gate defaults and limits (issue 23 item 1).
const (
	DefaultGateMinCompliantPercent = 90
	DefaultGateMaxFailedPercent    = 2
	DefaultGateMaxWait             = 7 * 24 * time.Hour
	MaxGateMaxWait                 = 30 * 24 * time.Hour
)

// ErrInvalidGate reports a health gate whose values are out of range.
var ErrInvalidGate = errors.New("invalid ring gate")

// RingGate is the health gate a ring must pass before the next ring's
// notice starts: at least MinCompliantPercent of its eligible Macs on the
// target and at most MaxFailedPercent failed. Nil fields take the
// defaults (90 %, 2 %, 7 days), so an explicit 0 stays expressible.
type RingGate struct {
	MinCompliantPercent *int `json:"min_compliant_percent,omitempty"`
	MaxFailedPercent    *int `json:"max_failed_percent,omitempty"`
	// MaxWaitHours: after this long without opening, the gate stops
	// waiting and an admin must promote the next ring by hand.
	MaxWaitHours *int `json:"max_wait_hours,omitempty"`
}

func (g RingGate) minCompliant() int {
	return intOr(g.MinCompliantPercent, DefaultGateMinCompliantPercent)
}
func (g RingGate) maxFailed() int { return intOr(g.MaxFailedPercent, DefaultGateMaxFailedPercent) }

func (g RingGate) maxWait() time.Duration {
	if g.MaxWaitHours == nil {
		return DefaultGateMaxWait
	}
	return time.Duration(*g.MaxWaitHours) * time.Hour
}

func intOr(p *int, def int) int {
	if p == nil {
		return def
	}
	return *p
}

// Validate checks the percentages (0 to 100) and the maximum wait (1 hour
// to 30 days).
func (g RingGate) Validate() error {
	if v := g.minCompliant(); v < 0 || v > 100 {
		return fmt.Errorf("%w: min_compliant_percent %d: must be 0 to 100", ErrInvalidGate, v)
	}
	if v := g.maxFailed(); v < 0 || v > 100 {
		return fmt.Errorf("%w: max_failed_percent %d: must be 0 to 100", ErrInvalidGate, v)
	}
	// The hours are checked before they become a Duration, which a huge
	// count would overflow into the valid range.
	if h := g.MaxWaitHours; h != nil && (*h < 1 || *h > int(MaxGateMaxWait/time.Hour)) {
		return fmt.Errorf("%w: max_wait_hours %d: must be 1 to %d hours", ErrInvalidGate, *h, int(MaxGateMaxWait/time.Hour))
	}
	return nil
}

// RingTally counts a ring's eligible Macs (exempt and unsupported Macs are
// not eligible), those compliant on the target and those failed.
type RingTally struct {
	Eligible  int `json:"eligible"`
	Compliant int `json:"compliant"`
	Failed    int `json:"failed"`
}

// GateVerdict is what a gate decides for the ring after it.
type GateVerdict struct {
	Open bool `json:"open"`
	// NeedsPromotion: the maximum wait has passed with the gate shut; only
	// an admin's promotion opens it now.
	NeedsPromotion bool `json:"needs_promotion,omitempty"`
	// Reason says why, for devices show, the report, the API and metrics.
	Reason string `json:"reason"`
}

// Evaluate decides the gate of a ring whose notice started at started,
// given its tally at now. promoted is an admin's promotion by hand, which
// opens the gate whatever the tally. An empty ring holds nothing back.
func (g RingGate) Evaluate(t RingTally, started, now time.Time, promoted bool) GateVerdict {
	if promoted {
		return GateVerdict{Open: true, Reason: "promoted by hand"}
	}
	if t.Eligible <= 0 {
		return GateVerdict{Open: true, Reason: "no eligible Macs"}
	}
	minC, maxF := g.minCompliant(), g.maxFailed()
	// Integer cross-multiplication: no rounding at the threshold.
	failedOK := t.Failed*100 <= maxF*t.Eligible
	compliantOK := t.Compliant*100 >= minC*t.Eligible
	if failedOK && compliantOK {
		return GateVerdict{Open: true, Reason: fmt.Sprintf("%d of %d Macs compliant (≥ %d %%), %d failed (≤ %d %%)", t.Compliant, t.Eligible, minC, t.Failed, maxF)}
	}
	var why string
	if !failedOK {
		why = fmt.Sprintf("%d of %d Macs failed (> %d %%)", t.Failed, t.Eligible, maxF)
	} else {
		why = fmt.Sprintf("%d of %d Macs compliant (< %d %%)", t.Compliant, t.Eligible, minC)
	}
	if !started.IsZero() && !now.Before(started.Add(g.maxWait())) {
		return GateVerdict{NeedsPromotion: true, Reason: why + "; maximum wait passed, promote by hand"}
	}
	return GateVerdict{Reason: why}
}

// Ring is one ring of a gated policy, in rollout order.
type Ring struct {
	Name  string
	Gate  RingGate
	Tally RingTally
	// Started is when the ring's notice started (zero if not yet).
	Started  time.Time
	Promoted bool
}

// RingStatus says whether a ring's notice may start and, if not, which
// earlier ring holds it and why.
type RingStatus struct {
	Name      string `json:"name"`
	MayNotify bool   `json:"may_notify"`
	HeldBy    string `json:"held_by,omitempty"`
	Reason    string `json:"reason,omitempty"`
	// Gate is this ring's own gate, for the ring after it.
	Gate GateVerdict `json:"gate"`
	// Tally is the count of this ring's Macs the gate was decided on.
	Tally RingTally `json:"tally"`
}

// GateRings walks the rings in order: the first ring always notifies;
// ring N+1 notifies only when ring N notifies and its gate is open. A shut
// gate holds every later ring, with the same reason. It decides only when
// notice starts, so a Mac already notified keeps its deadline.
func GateRings(rings []Ring, now time.Time) []RingStatus {
	out := make([]RingStatus, len(rings))
	may, heldBy, reason := true, "", ""
	for i, r := range rings {
		out[i] = RingStatus{Name: r.Name, MayNotify: may, HeldBy: heldBy, Reason: reason, Tally: r.Tally}
		if !may {
			continue
		}
		v := r.Gate.Evaluate(r.Tally, r.Started, now, r.Promoted)
		out[i].Gate = v
		if !v.Open {
			may, heldBy, reason = false, r.Name, v.Reason
		}
	}
	return out
}

// Add counts one Mac of the ring by its phase: compliant and every phase
// of a Mac working toward a target are eligible; exempt, unsupported,
// ineligible, unknown and unmanaged Macs are not, so they neither help nor
// hold the gate.
func (t *RingTally) Add(p softwareupdate.Phase) {
	switch {
	case p == softwareupdate.PhaseCompliant:
		t.Eligible++
		t.Compliant++
	case p == softwareupdate.PhaseFailed:
		t.Eligible++
		t.Failed++
	case nonCompliant(p):
		t.Eligible++
	}
}
