package push

import (
	"context"
	"time"
)

// Store keeps the push state of enrollments for the Service. The lead's
// storage backends implement it; the contract is:
//
// Per enrollment the store keeps the push token and push magic from the last
// TokenUpdate, a "token invalid" flag, and a re-push schedule: the Attempt
// counter and the NextRepush time of the last Record.
//
//   - PushTargets returns a TargetState for each of ids that has a push token
//     which is not flagged invalid. Unknown ids, ids without a token and ids
//     with an invalid token are left out without error. Order does not matter.
//     Attempt is the Attempt of the last recorded push, or 0 if nothing was
//     recorded since the schedule was last reset.
//   - RecordPushes stores each Record: the last push time, outcome and reason
//     (visible to the admin), Attempt and NextRepush (a zero NextRepush means
//     no re-push is scheduled and the enrollment leaves the due index). When
//     rec.Outcome.InvalidatesToken() is true it also flags the token invalid.
//     Records for unknown enrollments are ignored. Writing all records in one
//     transaction is preferred but not required.
//   - DueRepushes returns up to limit enrollment IDs whose NextRepush is
//     non-zero and not after now, and which still have pending work (queued
//     commands, or declarations the device has not fetched), earliest
//     NextRepush first. An enrollment found due without pending work may be
//     left out (and its schedule cleared). Enrollments that PushTargets
//     would leave out (no token, invalid token) must be left out here too.
//
// Two more rules belong to the check-in path, which the store's owner
// implements outside this interface:
//
//   - Reset on contact: whenever the device connects (any authenticated
//     check-in or command request), set Attempt to 0 and NextRepush to zero.
//     A device that answers does not need re-pushing.
//   - TokenUpdate stores the new token and push magic and clears the invalid
//     flag, even when the token is unchanged.
type Store interface {
	// PushTargets returns the push targets of ids, with their re-push state.
	PushTargets(ctx context.Context, ids []string) ([]TargetState, error)
	// RecordPushes stores the outcome and re-push schedule of pushes.
	RecordPushes(ctx context.Context, recs []Record) error
	// DueRepushes lists enrollments with pending work that are due a re-push.
	DueRepushes(ctx context.Context, now time.Time, limit int) ([]string, error)
}

// TargetState is a push Target with its re-push state.
type TargetState struct {
	Target
	// Attempt counts the pushes sent since the device last connected.
	Attempt int
}

// Record is the outcome of one push, to be stored.
type Record struct {
	// EnrollmentID identifies the enrollment.
	EnrollmentID string
	// At is when the push was done.
	At time.Time
	// Outcome is the push outcome.
	Outcome Outcome
	// Reason is APNs' reason or a short local reason; empty when OK.
	Reason string
	// Attempt counts the pushes sent since the device last connected,
	// this one included.
	Attempt int
	// NextRepush is when to push again if the device stays silent with
	// pending work; zero means never.
	NextRepush time.Time
}
