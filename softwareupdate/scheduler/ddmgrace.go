package scheduler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/storage"
)

// Delivery is what a Mac did with its enforcement declaration.
type Delivery struct {
	// Declared: an enforcement declaration is set for the Mac.
	Declared bool
	// Fetched: the Mac fetched, acknowledged or reported a version of it,
	// so macOS holds one and enforces it on its own clock.
	Fetched bool
	// LastReport is when the Mac last sent a declarative status report.
	LastReport time.Time
}

// OfflineWithdrawer is a declarative enforcer that can take back the
// enforcement declaration of a Mac offline at its deadline (the offline
// grace on the declarative path, below).
type OfflineWithdrawer interface {
	// Delivery reads what the Mac did with its enforcement declaration.
	Delivery(ctx context.Context, st *State) (Delivery, error)
	// WithdrawOffline removes the declaration and asks the Mac for
	// something it answers at its next connection, recorded in st's step
	// fields (Awaiting) and cleared by HandleResult when it answers.
	WithdrawOffline(ctx context.Context, st *State, now time.Time) (Action, error)
}

// graceFor is the offline grace of pol's Macs: the policy's hours, else
// the server's; false when neither is on.
func (s *Scheduler) graceFor(pol *softwareupdate.Policy) (time.Duration, bool) {
	switch {
	case pol.OfflineGraceHours > 0:
		return time.Duration(pol.OfflineGraceHours) * time.Hour, true
	case s.grace < 0:
		return 0, false
	case s.grace == 0:
		return DefaultOfflineGrace, true
	}
	return s.grace, true
}

// declarativeGrace is the offline grace on the declarative path. macOS
// enforces a declaration it holds by itself at its TargetLocalDateTime, so
// only a Mac that never fetched its declaration can be given a grace: on
// waking after its deadline it would fetch a TargetLocalDateTime in the
// past and install at once. At its deadline (the evaluation that moves it
// into countdown or enforce) such a Mac, if not seen since its notice,
// has its declaration withdrawn: its first sync after waking finds none.
// When it is back (it answered what WithdrawOffline queued, sent
// inventory or a status report), it gets a fresh declaration whose
// TargetLocalDateTime is the grace's end (GraceUntil: first check-in +
// grace, moved to working time by a business calendar). While away, the
// enforcer is not asked for a step (skip), so nothing re-writes the stale
// time. Afterwards the enforcer is always given the grace's deadline
// (GraceUntil - CountdownWindow), so the declaration stays as written.
func (s *Scheduler) declarativeGrace(ctx context.Context, st *State, pol *softwareupdate.Policy, dec softwareupdate.Decision,
	prev softwareupdate.Phase, now time.Time, cal *softwareupdate.WorkCalendar, loc *time.Location) (out softwareupdate.Decision, act Action, skip bool, err error) {
	w, _ := s.enforcers[softwareupdate.PathDeclarative].(OfflineWithdrawer)
	grace, on := s.graceFor(pol)
	late := dec.Phase == softwareupdate.PhaseCountdown || dec.Phase == softwareupdate.PhaseEnforce
	if w == nil || !on || !(late || dec.Phase == softwareupdate.PhaseFailed) {
		st.OfflineAt, st.GraceUntil = time.Time{}, time.Time{}
		return dec, act, false, nil
	}
	switch {
	case !st.GraceUntil.IsZero():
	case !st.OfflineAt.IsZero():
		back, err := declarativeBack(ctx, w, st)
		if err != nil || !back {
			return dec, act, true, err
		}
		st.GraceUntil = now.Add(grace)
		moved := ""
		if until, why := cal.Next(st.GraceUntil, 0, loc); why != "" {
			st.GraceUntil, moved = until, " (moved to working time: "+softwareupdate.MoveText(why, until, loc)+")"
		}
		act.Events = append(act.Events, Transition{At: now, Kind: EventResult, From: st.Phase, Target: st.Target,
			Deadline: st.GraceUntil.Add(-softwareupdate.CountdownWindow),
			Reason: "back after its deadline: offline grace until " + st.GraceUntil.Format(time.RFC3339) + moved +
				", a fresh enforcement declaration installs then"})
	default:
		if !late || prev == softwareupdate.PhaseCountdown || prev == softwareupdate.PhaseEnforce {
			return dec, act, false, nil // only at the deadline itself
		}
		away, err := s.awayAtDeadline(ctx, w, st)
		if err != nil || !away {
			return dec, act, false, err
		}
		act, err = w.WithdrawOffline(ctx, st, now)
		if err != nil {
			return dec, Action{}, false, err
		}
		st.OfflineAt = now
		act.Events = append([]Transition{{At: now, Kind: EventResult, From: st.Phase, Target: st.Target,
			Reason: fmt.Sprintf("offline at its deadline without its enforcement declaration: withdrawn, a fresh one installs %s after its first check-in (offline grace)", grace)}},
			act.Events...)
		return dec, act, true, nil
	}
	if dec.Phase == softwareupdate.PhaseFailed {
		return dec, act, false, nil
	}
	held := dec
	held.Deadline = st.GraceUntil.Add(-softwareupdate.CountdownWindow)
	held.Phase = softwareupdate.PhaseCountdown
	if !now.Before(st.GraceUntil) {
		held.Phase = softwareupdate.PhaseEnforce
	}
	return held, act, false, nil
}

// awayAtDeadline reports whether a Mac reaching its deadline never got its
// enforcement declaration and was not seen since its notice: no fetch or
// acknowledgement of the declaration, no status report, no inventory and
// no recorded check-in since the declaration's notice.
func (s *Scheduler) awayAtDeadline(ctx context.Context, w OfflineWithdrawer, st *State) (bool, error) {
	notice := st.NotifiedAt
	if notice.IsZero() || !st.Facts.InventoryAt.Before(notice) {
		return false, nil
	}
	d, err := w.Delivery(ctx, st)
	if err != nil {
		return false, fmt.Errorf("read declaration delivery: %w", err)
	}
	if !d.Declared || d.Fetched || !d.LastReport.Before(notice) {
		return false, nil
	}
	dev, err := s.devices.Device(ctx, st.DeviceID)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("load device: %w", err)
	}
	return dev.LastSeen.Before(notice), nil
}

// declarativeBack reports whether a Mac whose declaration was withdrawn
// has been heard from since: it answered the command WithdrawOffline
// queued, sent inventory, or sent a declarative status report.
func declarativeBack(ctx context.Context, w OfflineWithdrawer, st *State) (bool, error) {
	if st.Awaiting == "" || st.Facts.InventoryAt.After(st.OfflineAt) {
		return true, nil
	}
	d, err := w.Delivery(ctx, st)
	if err != nil {
		return false, fmt.Errorf("read declaration delivery: %w", err)
	}
	return d.LastReport.After(st.OfflineAt), nil
}

// AgentDeadline is the deadline the Mac's agent counts down to: the
// personal deadline, or during an offline grace the grace's end less the
// countdown, so the agent's countdown ends when the install is forced.
func (s *State) AgentDeadline() time.Time {
	if g := s.GraceUntil.Add(-softwareupdate.CountdownWindow); !s.GraceUntil.IsZero() && g.After(s.Deadline) {
		return g
	}
	return s.Deadline
}
