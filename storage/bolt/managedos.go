package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/internal/webhook"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// Managed OS buckets:
//
//	msgroups  <group id>             JSON scheduler.Group
//	msmember  <device id>            group ID (absent: the default group)
//	mspolicy  <group id>             JSON scheduler.PolicyRecord
//	msexc     <scope> 0x00 <id>      JSON scheduler.ExceptionRecord
//	msstate   <device id>            scheduler.State (statecodec.go)
//	msnew     <device id>            (empty): devices without a state yet
//	msdue     <next due nanos><id>   (empty): the scheduler's due index
//	mshist    <device id> 0x00 <seq> scheduler.Transition (histcodec.go; JSON before)
//	msaudit   <seq>                  JSON scheduler.AuditEntry
var (
	bMSGroups = []byte("msgroups")
	bMSMember = []byte("msmember")
	bMSPolicy = []byte("mspolicy")
	bMSExc    = []byte("msexc")
	bMSState  = []byte("msstate")
	bMSNew    = []byte("msnew")
	bMSDue    = []byte("msdue")
	bMSHist   = []byte("mshist")
	bMSAudit  = []byte("msaudit")
)

func init() {
	allBuckets = append(allBuckets, bMSGroups, bMSMember, bMSPolicy, bMSExc, bMSState, bMSNew, bMSDue, bMSHist, bMSAudit)
}

var _ scheduler.Store = (*Store)(nil)

func msDueKey(t time.Time, id string) []byte { return append(unixNanos(t), id...) }

func putJSON(b *bbolt.Bucket, k []byte, v any) error {
	enc, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(k, enc)
}

func writeAudit(tx *bbolt.Tx, a *scheduler.AuditEntry) error {
	if a == nil {
		return nil
	}
	b := tx.Bucket(bMSAudit)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	a.Seq = seq
	return putJSON(b, u64(seq), a)
}

func groupExists(tx *bbolt.Tx, id string) bool {
	return id == scheduler.DefaultGroupID || tx.Bucket(bMSGroups).Get([]byte(id)) != nil
}

// PutGroup implements scheduler.GroupStore.
func (s *Store) PutGroup(ctx context.Context, g scheduler.Group, audit *scheduler.AuditEntry) error {
	if !scheduler.ValidGroupID(g.ID) {
		return fmt.Errorf("group id %q: %w", g.ID, scheduler.ErrInvalid)
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		if err := putJSON(tx.Bucket(bMSGroups), []byte(g.ID), g); err != nil {
			return err
		}
		return writeAudit(tx, audit)
	})
}

// DeleteGroup implements scheduler.GroupStore.
func (s *Store) DeleteGroup(ctx context.Context, id string, audit *scheduler.AuditEntry) error {
	if id == scheduler.DefaultGroupID {
		return fmt.Errorf("the default group cannot be deleted: %w", scheduler.ErrInvalid)
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		groups := tx.Bucket(bMSGroups)
		if groups.Get([]byte(id)) == nil {
			return fmt.Errorf("group %s: %w", id, storage.ErrNotFound)
		}
		if err := groups.Delete([]byte(id)); err != nil {
			return err
		}
		if err := tx.Bucket(bMSPolicy).Delete([]byte(id)); err != nil {
			return err
		}
		if err := tx.Bucket(bMSExc).Delete(excKey(scheduler.ScopeGroup, id)); err != nil {
			return err
		}
		members := tx.Bucket(bMSMember)
		var drop [][]byte
		c := members.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if string(v) == id {
				drop = append(drop, clone(k))
			}
		}
		for _, k := range drop {
			if err := members.Delete(k); err != nil {
				return err
			}
		}
		return writeAudit(tx, audit)
	})
}

// Groups implements scheduler.GroupStore.
func (s *Store) Groups(ctx context.Context) ([]scheduler.Group, error) {
	var out []scheduler.Group
	hasDefault := false
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bMSGroups).ForEach(func(k, v []byte) error {
			var g scheduler.Group
			if err := json.Unmarshal(v, &g); err != nil {
				return fmt.Errorf("decode group %s: %w", k, err)
			}
			hasDefault = hasDefault || g.ID == scheduler.DefaultGroupID
			out = append(out, g)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	if !hasDefault {
		out = append(out, scheduler.Group{ID: scheduler.DefaultGroupID, Name: "Default"})
		sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	}
	return out, nil
}

// AssignDevices implements scheduler.GroupStore.
func (s *Store) AssignDevices(ctx context.Context, group string, ids []string, audit *scheduler.AuditEntry) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		if !groupExists(tx, group) {
			return fmt.Errorf("group %s: %w", group, storage.ErrNotFound)
		}
		members := tx.Bucket(bMSMember)
		for _, id := range ids {
			if id == "" {
				return fmt.Errorf("empty device id: %w", scheduler.ErrInvalid)
			}
			var err error
			if group == scheduler.DefaultGroupID {
				err = members.Delete([]byte(id))
			} else {
				err = members.Put([]byte(id), []byte(group))
			}
			if err != nil {
				return err
			}
		}
		return writeAudit(tx, audit)
	})
}

// GroupsOf implements scheduler.GroupStore.
func (s *Store) GroupsOf(ctx context.Context, ids []string) ([]string, error) {
	out := make([]string, len(ids))
	err := s.db.View(func(tx *bbolt.Tx) error {
		members := tx.Bucket(bMSMember)
		for i, id := range ids {
			if v := members.Get([]byte(id)); v != nil {
				out[i] = string(v)
			} else {
				out[i] = scheduler.DefaultGroupID
			}
		}
		return nil
	})
	return out, err
}

// PutPolicy implements scheduler.PolicyStore.
func (s *Store) PutPolicy(ctx context.Context, rec scheduler.PolicyRecord, audit *scheduler.AuditEntry) (*scheduler.PolicyRecord, error) {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if !groupExists(tx, rec.GroupID) {
			return fmt.Errorf("group %s: %w", rec.GroupID, storage.ErrNotFound)
		}
		b := tx.Bucket(bMSPolicy)
		rec.Revision = 1
		if v := b.Get([]byte(rec.GroupID)); v != nil {
			var old scheduler.PolicyRecord
			if err := json.Unmarshal(v, &old); err != nil {
				return fmt.Errorf("decode policy %s: %w", rec.GroupID, err)
			}
			rec.Revision = old.Revision + 1
		}
		if err := putJSON(b, []byte(rec.GroupID), rec); err != nil {
			return err
		}
		return writeAudit(tx, audit)
	})
	if err != nil {
		return nil, err
	}
	return &rec, nil
}

// Policies implements scheduler.PolicyStore.
func (s *Store) Policies(ctx context.Context) ([]scheduler.PolicyRecord, error) {
	var out []scheduler.PolicyRecord
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bMSPolicy).ForEach(func(k, v []byte) error {
			var p scheduler.PolicyRecord
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("decode policy %s: %w", k, err)
			}
			out = append(out, p)
			return nil
		})
	})
	return out, err
}

func excKey(scope scheduler.ExceptionScope, id string) []byte { return key(string(scope), []byte(id)) }

// PutException implements scheduler.ExceptionStore.
func (s *Store) PutException(ctx context.Context, rec scheduler.ExceptionRecord, audit *scheduler.AuditEntry) error {
	switch rec.Scope {
	case scheduler.ScopeDevice, scheduler.ScopeGroup:
	default:
		return fmt.Errorf("exception scope %q: %w", rec.Scope, scheduler.ErrInvalid)
	}
	if rec.ID == "" {
		return fmt.Errorf("exception without id: %w", scheduler.ErrInvalid)
	}
	ev, err := webhook.ExceptionEvent(&rec, rec.CreatedAt)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		if rec.Scope == scheduler.ScopeGroup && !groupExists(tx, rec.ID) {
			return fmt.Errorf("group %s: %w", rec.ID, storage.ErrNotFound)
		}
		if err := putJSON(tx.Bucket(bMSExc), excKey(rec.Scope, rec.ID), rec); err != nil {
			return err
		}
		if err := enqueueEventsTx(tx, []webhook.Event{ev}); err != nil {
			return err
		}
		return writeAudit(tx, audit)
	})
}

// DeleteException implements scheduler.ExceptionStore.
func (s *Store) DeleteException(ctx context.Context, scope scheduler.ExceptionScope, id string, audit *scheduler.AuditEntry) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bMSExc)
		k := excKey(scope, id)
		if b.Get(k) == nil {
			return fmt.Errorf("%s exception %s: %w", scope, id, storage.ErrNotFound)
		}
		if err := b.Delete(k); err != nil {
			return err
		}
		return writeAudit(tx, audit)
	})
}

// Exceptions implements scheduler.ExceptionStore.
func (s *Store) Exceptions(ctx context.Context) ([]scheduler.ExceptionRecord, error) {
	var out []scheduler.ExceptionRecord
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bMSExc).ForEach(func(k, v []byte) error {
			var e scheduler.ExceptionRecord
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode exception: %w", err)
			}
			out = append(out, e)
			return nil
		})
	})
	return out, err
}

// States implements scheduler.StateStore.
func (s *Store) States(ctx context.Context, ids []string) ([]*scheduler.State, error) {
	out := make([]*scheduler.State, len(ids))
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bMSState)
		for i, id := range ids {
			v := b.Get([]byte(id))
			if v == nil {
				continue
			}
			st, err := decodeState(id, v)
			if err != nil {
				return err
			}
			out[i] = st
		}
		return nil
	})
	return out, err
}

// StateIDs implements scheduler.StateStore.
func (s *Store) StateIDs(ctx context.Context, after string, limit int) ([]string, error) {
	var ids []string
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bMSState).Cursor()
		k, _ := c.Seek([]byte(after))
		if k != nil && string(k) == after {
			k, _ = c.Next()
		}
		for ; k != nil && (limit <= 0 || len(ids) < limit); k, _ = c.Next() {
			ids = append(ids, string(k))
		}
		return nil
	})
	return ids, err
}

// Unevaluated implements scheduler.StateStore. It walks the small index of
// devices without a state (msnew), not the device records.
func (s *Store) Unevaluated(ctx context.Context, after string, limit int) ([]string, error) {
	var ids []string
	err := s.db.View(func(tx *bbolt.Tx) error {
		states := tx.Bucket(bMSState)
		c := tx.Bucket(bMSNew).Cursor()
		k, _ := c.Seek([]byte(after))
		if k != nil && string(k) == after {
			k, _ = c.Next()
		}
		for ; k != nil && (limit <= 0 || len(ids) < limit); k, _ = c.Next() {
			if bytes.IndexByte(k, ':') >= 0 || states.Get(k) != nil {
				continue
			}
			ids = append(ids, string(k))
		}
		return nil
	})
	return ids, err
}

// DueDevices implements scheduler.StateStore.
func (s *Store) DueDevices(ctx context.Context, now time.Time, limit int) ([]string, error) {
	var ids []string
	end := unixNanos(now)
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bMSDue).Cursor()
		for k, _ := c.First(); k != nil && len(k) > 8; k, _ = c.Next() {
			if bytes.Compare(k[:8], end) > 0 || (limit > 0 && len(ids) >= limit) {
				break
			}
			ids = append(ids, string(k[8:]))
		}
		return nil
	})
	return ids, err
}

// prepared is a commit encoded ahead of Commit (PrepareCommits).
type prepared struct {
	state  []byte   // the state with Rev+1
	hist   [][]byte // one per history entry
	bodies [][]byte // packed, one per command
}

// PrepareCommits implements scheduler.CommitPreparer: it encodes each
// commit's state, history entries and command bodies, which Commit would
// otherwise do inside the write transaction.
func (s *Store) PrepareCommits(commits []scheduler.Commit) {
	for i := range commits {
		c := &commits[i]
		if c.State == nil {
			continue
		}
		st := *c.State
		st.Rev++
		p := &prepared{state: encodeState(&st), hist: make([][]byte, len(c.History)), bodies: make([][]byte, len(c.Commands))}
		for j := range c.History {
			p.hist[j] = encodeTransition(&c.History[j])
		}
		for j, cmd := range c.Commands {
			p.bodies[j] = packBlob(cmd.Raw)
		}
		c.Prepared = p
	}
}

// preparedFor returns c's prepared encoding if it matches c's shape.
func preparedFor(c *scheduler.Commit) *prepared {
	p, ok := c.Prepared.(*prepared)
	if !ok || len(p.hist) != len(c.History) || len(p.bodies) != len(c.Commands) {
		return nil
	}
	return p
}

// Commit implements scheduler.StateStore.
func (s *Store) Commit(ctx context.Context, commits []scheduler.Commit, now time.Time) error {
	if len(commits) == 0 {
		return nil
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		states, due, hist, unevaluated := tx.Bucket(bMSState), tx.Bucket(bMSDue), tx.Bucket(bMSHist), tx.Bucket(bMSNew)
		var conflicts []string
		olds := make([]*scheduler.State, len(commits))
		for i, c := range commits {
			st := c.State
			if st == nil || st.DeviceID == "" {
				return fmt.Errorf("commit without device: %w", scheduler.ErrInvalid)
			}
			var stored uint64
			if v := states.Get([]byte(st.DeviceID)); v != nil {
				old, err := decodeState(st.DeviceID, v)
				if err != nil {
					return err
				}
				olds[i], stored = old, old.Rev
			}
			if stored != st.Rev {
				conflicts = append(conflicts, st.DeviceID)
			}
		}
		if len(conflicts) > 0 {
			return &scheduler.ConflictError{IDs: conflicts}
		}
		for i, c := range commits {
			st := *c.State
			st.Rev++
			p := preparedFor(&c)
			if old := olds[i]; old != nil && !old.NextDue.IsZero() {
				if err := due.Delete(msDueKey(old.NextDue, st.DeviceID)); err != nil {
					return err
				}
			}
			if !st.NextDue.IsZero() {
				if err := due.Put(msDueKey(st.NextDue, st.DeviceID), nil); err != nil {
					return err
				}
			}
			var v []byte
			if p != nil {
				v = p.state
			} else {
				v = encodeState(&st)
			}
			if err := states.Put([]byte(st.DeviceID), v); err != nil {
				return err
			}
			if err := unevaluated.Delete([]byte(st.DeviceID)); err != nil {
				return err
			}
			for j := range c.History {
				seq, err := hist.NextSequence()
				if err != nil {
					return err
				}
				var v []byte
				if p != nil {
					v = p.hist[j]
				} else {
					v = encodeTransition(&c.History[j])
				}
				if err := hist.Put(key(st.DeviceID, u64(seq)), v); err != nil {
					return err
				}
			}
			for j, cmd := range c.Commands {
				var body []byte
				if p != nil {
					body = p.bodies[j]
				}
				// Devices are never deleted, so a stored state proves the
				// enrollment exists; only a first evaluation checks.
				if olds[i] == nil {
					if err := checkEnrolled(tx, []string{st.DeviceID}); err != nil {
						return err
					}
				}
				if err := s.enqueuePacked(tx, []string{st.DeviceID}, cmd, body, now); err != nil {
					return err
				}
			}
		}
		return enqueueCommitWebhooks(tx, commits, now)
	})
}

// History implements scheduler.StateStore.
func (s *Store) History(ctx context.Context, id string, limit int) ([]scheduler.Transition, error) {
	var out []scheduler.Transition
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bMSHist).Cursor()
		p := prefix(id)
		// Walk backwards from the end of the prefix to take the last `limit`.
		end := append(clone(p), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
		k, v := c.Seek(end)
		if k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, p) && len(k) == len(p)+8; k, v = c.Prev() {
			if limit > 0 && len(out) >= limit {
				break
			}
			var t scheduler.Transition
			if err := decodeTransition(v, &t); err != nil {
				return fmt.Errorf("history %s/%d: %w", id, binary.BigEndian.Uint64(k[len(p):]), err)
			}
			out = append(out, t)
		}
		return nil
	})
	// Oldest first.
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, err
}

// Audit implements scheduler.AuditLog.
func (s *Store) Audit(ctx context.Context, after uint64, limit int) ([]scheduler.AuditEntry, error) {
	var out []scheduler.AuditEntry
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bMSAudit).Cursor()
		for k, v := c.Seek(u64(after + 1)); k != nil; k, v = c.Next() {
			if limit > 0 && len(out) >= limit {
				break
			}
			var a scheduler.AuditEntry
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("decode audit entry: %w", err)
			}
			out = append(out, a)
		}
		return nil
	})
	return out, err
}
