package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/push"
)

// Push state buckets:
//
//	push     <id>                    JSON mdm.PushState
//	pushdue  <next re-push nanos><id> (empty): the re-push index
var (
	bPush    = []byte("push")
	bPushDue = []byte("pushdue")
)

func init() { allBuckets = append(allBuckets, bPush, bPushDue) }

func dueKey(t time.Time, id string) []byte {
	return append(unixNanos(t), id...)
}

func getPushState(tx *bbolt.Tx, id string) (mdm.PushState, bool, error) {
	var st mdm.PushState
	v := tx.Bucket(bPush).Get([]byte(id))
	if v == nil {
		return st, false, nil
	}
	if err := json.Unmarshal(v, &st); err != nil {
		return st, false, fmt.Errorf("decode push state %s: %w", id, err)
	}
	return st, true, nil
}

func putPushState(tx *bbolt.Tx, id string, old, st mdm.PushState) error {
	due := tx.Bucket(bPushDue)
	if !old.NextRepush.IsZero() {
		if err := due.Delete(dueKey(old.NextRepush, id)); err != nil {
			return err
		}
	}
	if !st.NextRepush.IsZero() {
		if err := due.Put(dueKey(st.NextRepush, id), nil); err != nil {
			return err
		}
	}
	v, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return tx.Bucket(bPush).Put([]byte(id), v)
}

// resetPushSchedule clears the re-push schedule of a device seen at `seen`
// if that is not before its last push.
func resetPushSchedule(tx *bbolt.Tx, id string, seen time.Time) error {
	st, ok, err := getPushState(tx, id)
	if err != nil || !ok || (st.Attempt == 0 && st.NextRepush.IsZero()) || seen.Before(st.At) {
		return err
	}
	old := st
	st.Attempt, st.NextRepush = 0, time.Time{}
	return putPushState(tx, id, old, st)
}

// PushTargets implements push.Store.
func (s *Store) PushTargets(ctx context.Context, ids []string) ([]push.TargetState, error) {
	out := make([]push.TargetState, 0, len(ids))
	err := s.db.View(func(tx *bbolt.Tx) error {
		for _, id := range ids {
			d, err := getDevice(tx, id)
			if err != nil {
				continue // unknown: left out
			}
			if !d.Enabled || len(d.PushToken) == 0 || d.TokenInvalid || d.PushMagic == "" {
				continue
			}
			st, _, err := getPushState(tx, id)
			if err != nil {
				return err
			}
			out = append(out, push.TargetState{
				Target:  push.Target{EnrollmentID: id, Topic: d.Topic, Token: d.PushToken, PushMagic: d.PushMagic},
				Attempt: st.Attempt,
			})
		}
		return nil
	})
	return out, err
}

// RecordPushes implements push.Store.
func (s *Store) RecordPushes(ctx context.Context, recs []push.Record) error {
	if len(recs) == 0 {
		return nil
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		devs := tx.Bucket(bDevices)
		for _, r := range recs {
			if devs.Get([]byte(r.EnrollmentID)) == nil {
				continue
			}
			old, _, err := getPushState(tx, r.EnrollmentID)
			if err != nil {
				return err
			}
			st := mdm.PushState{At: r.At, Outcome: string(r.Outcome), Reason: r.Reason, Attempt: r.Attempt, NextRepush: r.NextRepush}
			if err := putPushState(tx, r.EnrollmentID, old, st); err != nil {
				return err
			}
			if r.Outcome.InvalidatesToken() {
				d, err := getDevice(tx, r.EnrollmentID)
				if err != nil {
					return err
				}
				was := invKey(d)
				d.TokenInvalid = true
				if err := putDevice(tx, d, was); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// DueRepushes implements push.Store.
func (s *Store) DueRepushes(ctx context.Context, now time.Time, limit int) ([]string, error) {
	var ids []string
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bPushDue).Cursor()
		end := unixNanos(now)
		seen, queue := tx.Bucket(bSeen), tx.Bucket(bQueue)
		for k, _ := c.First(); k != nil && len(k) > 8; k, _ = c.Next() {
			if bytes.Compare(k[:8], end) > 0 || (limit > 0 && len(ids) >= limit) {
				break
			}
			id := string(k[8:])
			st, ok, err := getPushState(tx, id)
			if err != nil || !ok {
				continue
			}
			if last := fromNanos(seen.Get([]byte(id))); !last.Before(st.At) {
				continue // it answered since the push
			}
			if qk, _ := queue.Cursor().Seek(prefix(id)); qk == nil || !bytes.HasPrefix(qk, prefix(id)) {
				continue // nothing pending
			}
			d, err := getDevice(tx, id)
			if err != nil || !d.Enabled || d.TokenInvalid || len(d.PushToken) == 0 {
				continue
			}
			ids = append(ids, id)
		}
		return nil
	})
	return ids, err
}
