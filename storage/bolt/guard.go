package bolt

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// Enrollment guard bucket:
//
//	guards   <id>   JSON mdm.EnrollmentGuard
var bGuards = []byte("guards")

func init() { allBuckets = append(allBuckets, bGuards) }

var _ storage.EnrollmentGuardStore = (*Store)(nil)

func getGuard(tx *bbolt.Tx, id string) (*mdm.EnrollmentGuard, error) {
	if tx.Bucket(bDevices).Get([]byte(id)) == nil {
		return nil, fmt.Errorf("device %s: %w", id, storage.ErrNotFound)
	}
	g := new(mdm.EnrollmentGuard)
	if v := tx.Bucket(bGuards).Get([]byte(id)); v != nil {
		if err := json.Unmarshal(v, g); err != nil {
			return nil, fmt.Errorf("decode enrollment guard of %s: %w", id, err)
		}
	}
	return g, nil
}

func updateGuard(tx *bbolt.Tx, id string, fn func(*mdm.EnrollmentGuard) error) error {
	g, err := getGuard(tx, id)
	if err != nil {
		return err
	}
	if err := fn(g); err != nil {
		return err
	}
	if n := len(g.Events) - mdm.MaxEnrollmentEvents; n > 0 {
		g.Events = g.Events[n:]
	}
	return putJSON(tx.Bucket(bGuards), []byte(id), g)
}

// EnrollmentGuard implements storage.EnrollmentGuardStore.
func (s *Store) EnrollmentGuard(ctx context.Context, id string) (*mdm.EnrollmentGuard, error) {
	var g *mdm.EnrollmentGuard
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		g, err = getGuard(tx, id)
		return err
	})
	return g, err
}

// UpdateEnrollmentGuard implements storage.EnrollmentGuardStore.
func (s *Store) UpdateEnrollmentGuard(ctx context.Context, id string, fn func(*mdm.EnrollmentGuard) error) error {
	// Batch: every enrolment records its binding here, so concurrent ones
	// share a commit. A retried batch runs fn again on the rolled-back
	// state, so fn sees each guard once per commit.
	return s.db.Batch(func(tx *bbolt.Tx) error { return updateGuard(tx, id, fn) })
}

// AllowReenroll lets the next Authenticate of id re-bind it to another
// certificate until `until`, recording who allowed it (audit.Actor, at
// audit.At) in the guard's history and in the audit log, in one
// transaction.
func (s *Store) AllowReenroll(ctx context.Context, id string, until time.Time, audit *scheduler.AuditEntry) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		err := updateGuard(tx, id, func(g *mdm.EnrollmentGuard) error {
			g.ReenrollUntil, g.ReenrollBy = until, audit.Actor
			g.AppendEvent(mdm.EnrollmentEvent{Kind: mdm.EventReenrollAllowed, At: audit.At, Actor: audit.Actor,
				Reason: "until " + until.UTC().Format(time.RFC3339)})
			return nil
		})
		if err != nil {
			return err
		}
		return writeAudit(tx, audit)
	})
}

// AuthenticateGuarded is Authenticate and UpdateEnrollmentGuard in one
// commit: every enrolment records its binding, and a commit of its own
// cost each enrolment another fsync.
func (s *Store) AuthenticateGuarded(ctx context.Context, id string, msg *mdm.CheckinMessage, certHash string, now time.Time, fn func(*mdm.EnrollmentGuard) error) error {
	return s.db.Batch(func(tx *bbolt.Tx) error {
		if err := s.authenticate(tx, id, msg, certHash, now); err != nil {
			return err
		}
		return updateGuard(tx, id, fn)
	})
}
