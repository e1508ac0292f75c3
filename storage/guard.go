package storage

import (
	"context"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
)

// EnrollmentGuardStore keeps each enrollment's mdm.EnrollmentGuard: the
// expiry of its bound certificate, an admin's approval to re-bind it, and
// its binding history.
type EnrollmentGuardStore interface {
	// EnrollmentGuard returns the guard of id; a device without one has a
	// zero guard. An unknown device gives ErrNotFound.
	EnrollmentGuard(ctx context.Context, id string) (*mdm.EnrollmentGuard, error)
	// UpdateEnrollmentGuard applies fn to the guard of id and stores the
	// result, atomically with respect to other updates of that guard. The
	// events are cut to the newest mdm.MaxEnrollmentEvents. If fn fails,
	// nothing is written and its error is returned. An unknown device gives
	// ErrNotFound.
	UpdateEnrollmentGuard(ctx context.Context, id string, fn func(*mdm.EnrollmentGuard) error) error
	// AuthenticateGuarded is CheckinStore.Authenticate followed by
	// UpdateEnrollmentGuard(id, fn), atomically (one commit per enrolment).
	AuthenticateGuarded(ctx context.Context, id string, msg *mdm.CheckinMessage, certHash string, now time.Time, fn func(*mdm.EnrollmentGuard) error) error
}
