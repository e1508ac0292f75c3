package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/storage"
)

// DefaultRebindWindow is how long after its bound certificate was last seen
// an enrollment may be re-bound to another certificate without proof. A
// managed Mac checks in at least daily (the inventory refresh), so a bound
// certificate silent this long is no longer in use.
const DefaultRebindWindow = 14 * 24 * time.Hour

// IdentityBindings tells which Mac an identity certificate was issued for.
// Automated Device Enrollment issues identities against SCEP challenges
// bound to a Mac's UDID; such an identity proves that an Authenticate for
// that UDID comes from the Mac itself.
type IdentityBindings interface {
	// BoundEnrollment returns the enrollment ID (the UDID) the certificate
	// with this SHA-256 (hex) was issued for, or "" if it was issued
	// without a binding.
	BoundEnrollment(ctx context.Context, certHash string) (string, error)
}

// WithIdentityBindings makes identities issued for a UDID proof of a
// re-enrollment of that UDID.
func WithIdentityBindings(b IdentityBindings) Option { return func(s *Service) { s.bindings = b } }

// WithRebindWindow sets DefaultRebindWindow.
func WithRebindWindow(d time.Duration) Option { return func(s *Service) { s.rebindWindow = d } }

// rebindCheck decides whether an Authenticate for id with who's certificate
// may bind the enrollment. It returns the event to record after a
// successful bind, or ErrUnauthorized (after recording the refusal) when
// the enrollment's certificate is valid, in use and nothing proves the new
// one belongs to the same Mac: that is an enrollment hijack attempt.
func (s *Service) rebindCheck(ctx context.Context, id string, who Identity, now time.Time, log checkinLog) (*mdm.EnrollmentEvent, bool, error) {
	prev, err := s.store.Device(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return &mdm.EnrollmentEvent{Kind: mdm.EventBound, At: now, NewCert: who.CertHash}, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("load device: %w", err)
	}
	if prev.CertHash == "" || prev.CertHash == who.CertHash {
		return &mdm.EnrollmentEvent{Kind: mdm.EventBound, At: now, OldCert: prev.CertHash, NewCert: who.CertHash}, false, nil
	}
	guard, err := s.store.EnrollmentGuard(ctx, id)
	if err != nil {
		return nil, false, fmt.Errorf("load enrollment guard: %w", err)
	}
	ev := &mdm.EnrollmentEvent{Kind: mdm.EventRebound, At: now, OldCert: prev.CertHash, NewCert: who.CertHash}
	usedApproval := false
	lastSeen := latest(prev.LastSeen, prev.AuthenticatedAt, prev.EnrolledAt, s.bufferedSeen(id))
	switch {
	case !prev.Enabled && !prev.CheckedOutAt.IsZero():
		ev.Reason = "the Mac checked out"
	case !prev.Enabled && prev.EnrolledAt.IsZero():
		ev.Reason = "the previous enrollment never completed"
	case !guard.CertNotAfter.IsZero() && now.After(guard.CertNotAfter):
		ev.Reason = "the bound certificate expired"
	case now.Sub(lastSeen) > s.rebindWindow:
		ev.Reason = "the bound certificate was last seen " + lastSeen.UTC().Format(time.RFC3339)
	case now.Before(guard.ReenrollUntil):
		ev.Reason, ev.Actor, usedApproval = "allowed by an admin", guard.ReenrollBy, true
	default:
		// Proven ownership: an identity issued against a challenge bound to
		// this UDID (ADE; the UDID is in the certificate), or one recorded
		// as issued for this enrollment.
		bound := who.BoundUDID
		if bound == "" && s.bindings != nil {
			if bound, err = s.bindings.BoundEnrollment(ctx, who.CertHash); err != nil {
				return nil, false, fmt.Errorf("look up identity binding: %w", err)
			}
		}
		if bound != id {
			refused := mdm.EnrollmentEvent{Kind: mdm.EventRebindRefused, At: now, OldCert: prev.CertHash, NewCert: who.CertHash,
				Reason: "the bound certificate is valid and in use"}
			log.Warn("re-enrollment refused: the enrollment's certificate is valid and in use",
				"old_cert", prev.CertHash, "new_cert", who.CertHash, "last_seen", lastSeen)
			if err := s.store.UpdateEnrollmentGuard(ctx, id, func(g *mdm.EnrollmentGuard) error {
				// Repeated attempts with one certificate are one event
				// with the latest time.
				if n := len(g.Events); n > 0 && g.Events[n-1].Kind == refused.Kind && g.Events[n-1].NewCert == refused.NewCert {
					g.Events[n-1].At = now
					return nil
				}
				g.AppendEvent(refused)
				return nil
			}); err != nil {
				log.Error("re-enrollment refusal not recorded", "err", err)
			}
			return nil, false, ErrUnauthorized
		}
		ev.Reason = "the identity was issued for this Mac"
	}
	return ev, usedApproval, nil
}

// recordBinding returns the guard update stored with the binding: the
// bound certificate's expiry and the binding event, and an admin's approval
// used up.
func recordBinding(who Identity, ev *mdm.EnrollmentEvent, usedApproval bool) func(*mdm.EnrollmentGuard) error {
	return func(g *mdm.EnrollmentGuard) error {
		g.CertNotAfter = who.NotAfter
		if usedApproval {
			g.ReenrollUntil, g.ReenrollBy = time.Time{}, ""
		}
		g.AppendEvent(*ev)
		return nil
	}
}

func (s *Service) bufferedSeen(id string) time.Time {
	s.seenMu.Lock()
	defer s.seenMu.Unlock()
	return s.seen[id]
}

func latest(ts ...time.Time) time.Time {
	var m time.Time
	for _, t := range ts {
		if t.After(m) {
			m = t
		}
	}
	return m
}
