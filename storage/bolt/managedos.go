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

// appendDueKey appends the msdue key of id due at t to dst.
func appendDueKey(dst []byte, t time.Time, id string) []byte {
	return append(binary.BigEndian.AppendUint64(dst, uint64(t.UnixNano())), id...)
}

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
		members := tx.Bucket(bMSMember).Cursor() // one cursor for all: see getAt
		// A few groups hold many devices: one copy of each group's ID.
		seen := map[string]string{}
		for i, id := range ids {
			if v := getAt(members, []byte(id)); v != nil {
				g, ok := seen[string(v)]
				if !ok {
					g = string(v)
					seen[g] = g
				}
				out[i] = g
			} else {
				out[i] = scheduler.DefaultGroupID
			}
		}
		return nil
	})
	return out, err
}

// getAt is Bucket.Get through c, a cursor of the bucket: bbolt gives each
// Get, Put and Delete a new cursor that allocates its path down the tree,
// so a loop over thousands of keys reuses one instead.
func getAt(c *bbolt.Cursor, k []byte) []byte {
	if got, v := c.Seek(k); bytes.Equal(got, k) {
		return v
	}
	return nil
}

// deleteAt is Bucket.Delete through c (see getAt).
func deleteAt(c *bbolt.Cursor, k []byte) error {
	if got, _ := c.Seek(k); bytes.Equal(got, k) {
		return c.Delete()
	}
	return nil
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

// States implements scheduler.StateStore. The states are decoded into one
// slice, each with its strings sharing one copy of its record: a pass
// loads a thousand at a time, and they go together when the chunk is done.
func (s *Store) States(ctx context.Context, ids []string) ([]*scheduler.State, error) {
	out := make([]*scheduler.State, len(ids))
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bMSState).Cursor()
		vals := make([][]byte, len(ids))
		n := 0
		for i, id := range ids {
			if vals[i] = getAt(b, []byte(id)); vals[i] != nil {
				n++
			}
		}
		slab := make([]scheduler.State, n)
		for i, id := range ids {
			if vals[i] == nil {
				continue
			}
			st := &slab[0]
			slab = slab[1:]
			if err := decodeStateShared(st, id, vals[i], true); err != nil {
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
// otherwise do inside the write transaction. The encodings are carved from
// shared blocks (arena), encoded through one scratch buffer.
func (s *Store) PrepareCommits(commits []scheduler.Commit) {
	var (
		a        arena
		buf, zip []byte
		slots    [][]byte // every commit's hist and bodies, in one slice
	)
	n := 0
	for i := range commits {
		n += len(commits[i].History) + len(commits[i].Commands)
	}
	slots = make([][]byte, n)
	ps := make([]prepared, len(commits))
	for i := range commits {
		c := &commits[i]
		if c.State == nil {
			continue
		}
		st := *c.State
		st.Rev++
		p := &ps[i]
		buf = appendState(buf[:0], &st)
		p.state = a.copy(buf)
		p.hist, slots = slots[:len(c.History):len(c.History)], slots[len(c.History):]
		for j := range c.History {
			buf = appendTransition(buf[:0], &c.History[j])
			p.hist[j] = a.copy(buf)
		}
		p.bodies, slots = slots[:len(c.Commands):len(c.Commands)], slots[len(c.Commands):]
		for j, cmd := range c.Commands {
			p.bodies[j] = packBlobWith(cmd.Raw, &zip, &a)
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
		stateCur, dueCur := states.Cursor(), due.Cursor() // see getAt
		// Keys are built in one buffer: bbolt copies the keys it stores.
		var kb []byte
		var conflicts []string
		// What Commit needs of each stored state: whether there is one and
		// its due time (the due index entry to replace).
		type storedState struct {
			found bool
			due   time.Time
		}
		olds := make([]storedState, len(commits))
		for i, c := range commits {
			st := c.State
			if st == nil || st.DeviceID == "" {
				return fmt.Errorf("commit without device: %w", scheduler.ErrInvalid)
			}
			var stored uint64
			kb = append(kb[:0], st.DeviceID...)
			if v := getAt(stateCur, kb); v != nil {
				rev, due, err := storedRevDue(st.DeviceID, v)
				if err != nil {
					return err
				}
				olds[i], stored = storedState{found: true, due: due}, rev
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
			if old := olds[i]; old.found && !old.due.IsZero() {
				kb = appendDueKey(kb[:0], old.due, st.DeviceID)
				if err := deleteAt(dueCur, kb); err != nil {
					return err
				}
			}
			if !st.NextDue.IsZero() {
				kb = appendDueKey(kb[:0], st.NextDue, st.DeviceID)
				if err := due.Put(kb, nil); err != nil {
					return err
				}
			}
			var v []byte
			if p != nil {
				v = p.state
			} else {
				v = encodeState(&st)
			}
			kb = append(kb[:0], st.DeviceID...)
			if err := states.Put(kb, v); err != nil {
				return err
			}
			// A device with a stored state left msnew at its first commit
			// (and Unevaluated skips one that has a state anyway).
			if !olds[i].found {
				if err := unevaluated.Delete(kb); err != nil {
					return err
				}
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
				kb = binary.BigEndian.AppendUint64(append(append(kb[:0], st.DeviceID...), 0), seq) // key(id, u64(seq))
				if err := hist.Put(kb, v); err != nil {
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
				if !olds[i].found {
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
