package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// RingData is the data of ring.held and ring.started: the plan, the ring
// (group) held or started, the ring whose gate decides (gate_group) with
// its tally and the gate's reason.
type RingData struct {
	Plan      string              `json:"plan"`
	Group     string              `json:"group"`
	GateGroup string              `json:"gate_group"`
	Tally     scheduler.RingTally `json:"tally"`
	Reason    string              `json:"reason"`
	// NeedsPromotion (ring.held): the gate's maximum wait has passed, only
	// an admin's `sundial rings promote` starts the ring.
	NeedsPromotion bool `json:"needs_promotion,omitempty"`
	// Started, Cause ("gate_passed" or "promoted"), PromotedBy and
	// PromotedAt (ring.started).
	Started    time.Time `json:"started,omitzero"`
	Cause      string    `json:"cause,omitempty"`
	PromotedBy string    `json:"promoted_by,omitempty"`
	PromotedAt time.Time `json:"promoted_at,omitzero"`
}

// RingKeep is how long the ledger remembers a ring event: longer than a
// rollout lasts, so a restart or a new leader never repeats one.
const RingKeep = 400 * 24 * time.Hour

// RingStartedWithin bounds which started rings an evaluation announces:
// those started this recently. A ring's start is stored before its event
// is queued, so a leader that died in between leaves the announcement to
// the next leader's first evaluation, which comes well within it.
const RingStartedWithin = 24 * time.Hour

func ringID(typ string, parts ...any) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s%q", typ, parts))
	return typ + ":" + hex.EncodeToString(sum[:16])
}

// RingEvents derives the ring events of one gate evaluation. Their IDs
// name the transition, not the evaluation, so evaluating again (on this
// leader, after a restart or on another leader) gives the same IDs and
// the once-ledger sends each once:
//   - ring.held for every ring after the first that a gate holds, keyed by
//     the plan, the ring, the gate's ring and its start, and whether the
//     gate needs a promotion (which announces the held ring once more);
//   - ring.started for every ring after the first whose notice started
//     within RingStartedWithin, keyed by the plan, the ring and its start.
func RingEvents(now time.Time, plans []scheduler.RingPlan, status map[string][]scheduler.RingStatus) ([]Event, error) {
	var out []Event
	for _, p := range plans {
		st := status[p.ID]
		if len(st) != len(p.Groups) {
			continue
		}
		index := make(map[string]int, len(p.Groups))
		for i, g := range p.Groups {
			index[g] = i
		}
		started := func(i int) time.Time {
			if i < len(p.States) {
				return p.States[i].Started
			}
			return time.Time{}
		}
		for i := 1; i < len(p.Groups); i++ {
			rs := st[i]
			if !rs.MayNotify {
				gi, ok := index[rs.HeldBy]
				if !ok {
					continue
				}
				gate := st[gi]
				d := RingData{Plan: p.ID, Group: p.Groups[i], GateGroup: rs.HeldBy, Tally: gate.Tally, Reason: rs.Reason,
					NeedsPromotion: gate.Gate.NeedsPromotion}
				e, err := New(TypeRingHeld, now, d)
				if err != nil {
					return nil, err
				}
				e.ID = ringID(TypeRingHeld, p.ID, p.Groups[i], rs.HeldBy, started(gi).UnixNano(), d.NeedsPromotion)
				out = append(out, e)
				continue
			}
			s := started(i)
			if s.IsZero() || now.Sub(s) > RingStartedWithin {
				continue
			}
			gate := st[i-1]
			d := RingData{Plan: p.ID, Group: p.Groups[i], GateGroup: p.Groups[i-1], Tally: gate.Tally, Reason: gate.Gate.Reason,
				Started: s.UTC(), Cause: "gate_passed"}
			if pr := p.States[i-1].Promoted; pr != nil {
				d.Cause, d.PromotedBy, d.PromotedAt = "promoted", pr.Actor, pr.At.UTC()
			}
			e, err := New(TypeRingStarted, s, d)
			if err != nil {
				return nil, err
			}
			e.ID = ringID(TypeRingStarted, p.ID, p.Groups[i], s.UnixNano())
			out = append(out, e)
		}
	}
	return out, nil
}

// GateObserver returns the scheduler's gate observer that queues the ring
// events of each evaluation through the once-ledger of s. A failure is
// logged; the next evaluation (at most RingGateInterval later) offers the
// same events again.
func GateObserver(s OnceStore, log *slog.Logger) scheduler.GateObserver {
	return func(ctx context.Context, now time.Time, plans []scheduler.RingPlan, status map[string][]scheduler.RingStatus) {
		events, err := RingEvents(now, plans, status)
		if err == nil {
			var n int
			if n, err = EmitOnce(ctx, s, events, now.Add(RingKeep)); n > 0 {
				log.Info("ring gate events queued", "events", n)
			}
		}
		if err != nil && ctx.Err() == nil {
			log.Warn("ring gate events failed", "err", err)
		}
	}
}
