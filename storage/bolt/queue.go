package bolt

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/storage"
)

const (
	flagQueued byte = 0
	flagNotNow byte = 1
)

// appendFill is the fill percent of the buckets keyed by command sequence
// (bbolt splits a page at this fraction). Their keys only grow and a record
// changes a few times soon after it is queued, so pages are written nearly
// full instead of half.
const appendFill = 0.95

func queueValue(flag byte, requestType, uuid string) []byte {
	v := make([]byte, 0, 2+len(requestType)+len(uuid))
	v = append(v, flag)
	v = append(v, requestType...)
	v = append(v, 0)
	return append(v, uuid...)
}

func parseQueueValue(v []byte) (flag byte, requestType, uuid string) {
	if len(v) == 0 {
		return 0, "", ""
	}
	rest := v[1:]
	i := bytes.IndexByte(rest, 0)
	if i < 0 {
		return v[0], "", string(rest)
	}
	return v[0], string(rest[:i]), string(rest[i+1:])
}

func getRecord(tx *bbolt.Tx, k []byte) (*mdm.CommandRecord, error) {
	v := tx.Bucket(bCmds).Get(k)
	if v == nil {
		return nil, storage.ErrNotFound
	}
	return decodeRecord(v)
}

// readBodies fills rec's command body and result stored under k.
func readBodies(tx *bbolt.Tx, k []byte, rec *mdm.CommandRecord) error {
	body, err := storedBody(tx, k)
	if err != nil {
		return fmt.Errorf("command %s: %w", rec.UUID, err)
	}
	if rec.Raw, err = unpackBlob(body); err != nil {
		return fmt.Errorf("command %s: %w", rec.UUID, err)
	}
	if r := tx.Bucket(bCmdRes).Get(k); r != nil { // older files keep it inside the JSON
		if rec.Result, err = unpackBlob(r); err != nil {
			return fmt.Errorf("command %s: %w", rec.UUID, err)
		}
	}
	return nil
}

func putRecord(tx *bbolt.Tx, k []byte, rec *mdm.CommandRecord) error {
	v, result := encodeRecord(rec), rec.Result // the body and result live in their own buckets
	if result != nil {
		res := tx.Bucket(bCmdRes)
		res.FillPercent = appendFill
		if err := res.Put(k, packBlob(result)); err != nil {
			return err
		}
	}
	recs := tx.Bucket(bCmds)
	recs.FillPercent = appendFill
	return recs.Put(k, v)
}

// Enqueue implements storage.CommandQueue.
// Concurrent enqueues share a transaction (and an fsync) through Batch.
func (s *Store) Enqueue(ctx context.Context, ids []string, cmd *mdm.Command, now time.Time) error {
	return s.db.Batch(func(tx *bbolt.Tx) error { return s.enqueue(tx, ids, cmd, now) })
}

func (s *Store) enqueue(tx *bbolt.Tx, ids []string, cmd *mdm.Command, now time.Time) error {
	if err := checkEnrolled(tx, ids); err != nil {
		return err
	}
	return s.enqueuePacked(tx, ids, cmd, nil, now)
}

// checkEnrolled fails with storage.ErrNotFound unless every id has a device
// record.
func checkEnrolled(tx *bbolt.Tx, ids []string) error {
	devs := tx.Bucket(bDevices)
	for _, id := range ids {
		if devs.Get([]byte(id)) == nil {
			return fmt.Errorf("enrollment %s: %w", id, storage.ErrNotFound)
		}
	}
	return nil
}

// enqueuePacked is enqueue for enrollments the caller knows exist, with
// the command's body already packed (nil: pack it here). Reading a device
// record to check brings its page (inventory JSON, the largest records)
// into memory: a scheduler pass queueing commands for 40,000 Macs whose
// update states it has just read would fault in most of the devices
// bucket for nothing.
func (s *Store) enqueuePacked(tx *bbolt.Tx, ids []string, cmd *mdm.Command, body []byte, now time.Time) error {
	for _, id := range ids {
		if s.commandSeq(tx, id, cmd.UUID) != nil {
			return fmt.Errorf("command %s for %s: %w", cmd.UUID, id, storage.ErrExists)
		}
	}
	cmds, cmdBodies := tx.Bucket(bCmds), tx.Bucket(bCmdRaw)
	cmdBodies.FillPercent = appendFill
	if body == nil {
		body = packBlob(cmd.Raw)
	}
	share := len(ids) > 1 && len(body) >= shareMin
	var ref []byte
	for i, id := range ids {
		seq, err := cmds.NextSequence()
		if err != nil {
			return err
		}
		k, ck := key(id, u64(seq)), u64(seq)
		rec := &mdm.CommandRecord{
			EnrollmentID: id, UUID: cmd.UUID, RequestType: cmd.RequestType, Seq: seq,
			Status: mdm.StatusQueued, QueuedAt: now, UpdatedAt: now,
			History: []mdm.StatusEvent{{Status: mdm.StatusQueued, At: now}},
		}
		if err := putRecord(tx, ck, rec); err != nil {
			return err
		}
		v := body
		if share {
			if i == 0 {
				if ref, err = putSharedBody(tx, ck, body, len(ids)); err != nil {
					return err
				}
			}
			v = ref
		}
		if err := cmdBodies.Put(ck, v); err != nil {
			return err
		}
		if err := tx.Bucket(bQueue).Put(k, queueValue(flagQueued, cmd.RequestType, cmd.UUID)); err != nil {
			return err
		}
	}
	return nil
}

// Since schema 4 a command is found by UUID in two places: its enrollment's
// queue while it is pending, cmdidx once it is finished (files before
// schema 4 also index pending commands there); since schema 6 a finished
// command may still wait in cmdfin on its way to cmdidx (cmdfin.go). Queueing a command then
// writes no index entry: a scheduler pass queueing commands for 40,000 Macs
// no longer dirties a page of cmdidx for each (a quarter of such a pass).

// queueUUID returns the UUID part of a queue value.
func queueUUID(v []byte) []byte {
	if i := bytes.LastIndexByte(v, 0); i >= 0 {
		return v[i+1:]
	}
	if len(v) > 0 {
		return v[1:]
	}
	return nil
}

// queuedSeq returns the sequence (a copy) of id's queued command uuid, or
// nil.
func queuedSeq(tx *bbolt.Tx, id, uuid string) []byte {
	_, seq, _ := findQueued(tx, id, uuid)
	return seq
}

// findQueued finds id's queued command uuid: a cursor on its queue entry,
// the sequence (a copy) and the entry's value, or a nil sequence. A Mac's
// queue holds a few commands; this walks them.
func findQueued(tx *bbolt.Tx, id, uuid string) (*bbolt.Cursor, []byte, []byte) {
	p := prefix(id)
	c := tx.Bucket(bQueue).Cursor()
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		if string(queueUUID(v)) == uuid {
			return c, clone(k[len(p):]), v
		}
	}
	return nil, nil, nil
}

// commandSeq returns the sequence (a copy) of id's command uuid, pending or
// finished, or nil.
func (s *Store) commandSeq(tx *bbolt.Tx, id, uuid string) []byte {
	k := key(id, []byte(uuid))
	if seq := tx.Bucket(bCmdIdx).Get(k); seq != nil {
		return clone(seq)
	}
	if seq := queuedSeq(tx, id, uuid); seq != nil {
		return seq
	}
	return s.fin.lookup(tx, k)
}

// storeReport records r against its command. It reports whether anything was
// written.
func (s *Store) storeReport(tx *bbolt.Tx, id string, r *mdm.Report, raw []byte, now time.Time) (string, error) {
	// Only a pending command takes a report: one that is not queued is
	// unknown or finished (a duplicate report), and nothing is recorded.
	// The cursor that finds it in the queue also updates or deletes it.
	c, seq, qv := findQueued(tx, id, r.CommandUUID)
	if seq == nil {
		return "", nil
	}
	rec, err := getRecord(tx, seq)
	if err != nil {
		return "", err
	}
	if !rec.Pending() {
		return "", nil // duplicate report of a finished command
	}
	rec.Status = string(r.Status)
	rec.UpdatedAt = now
	rec.History = mdm.AppendStatus(rec.History, mdm.StatusEvent{Status: string(r.Status), At: now})
	if r.Status == mdm.NotNow {
		rec.NotNowCount++
		_, rt, uuid := parseQueueValue(qv)
		if err := tx.Bucket(bQueue).Put(key(id, seq), queueValue(flagNotNow, rt, uuid)); err != nil {
			return "", err
		}
	} else {
		rec.ErrorChain = r.ErrorChain
		// Not copied: packBlob copies or compresses it, and bbolt only
		// reads it until the commit, which the caller waits for.
		rec.Result = raw
		if err := c.Delete(); err != nil {
			return "", err
		}
		if err := s.fin.log(tx, id, rec.UUID, seq); err != nil {
			return "", err
		}
	}
	return rec.RequestType, putRecord(tx, seq, rec)
}

// next finds the next command to send to id. With skipNotNow it passes over
// commands answered NotNow in this session. It reports whether any queued
// command carries the NotNow mark.
func next(tx *bbolt.Tx, id string, skipNotNow bool) (*mdm.Command, bool, error) {
	p := prefix(id)
	c := tx.Bucket(bQueue).Cursor()
	marked := false
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		flag, rt, uuid := parseQueueValue(v)
		if flag == flagNotNow {
			marked = true
			if skipNotNow {
				continue
			}
		}
		v, err := storedBody(tx, k[len(p):])
		if err != nil {
			return nil, marked, fmt.Errorf("command %s for %s: %w", uuid, id, err)
		}
		if v == nil {
			return nil, marked, fmt.Errorf("command %s for %s has no body", uuid, id)
		}
		raw, err := unpackBlob(v)
		if err != nil {
			return nil, marked, fmt.Errorf("command %s for %s: %w", uuid, id, err)
		}
		return &mdm.Command{UUID: uuid, RequestType: rt, Raw: raw}, marked, nil
	}
	return nil, marked, nil
}

// clearNotNow removes the NotNow marks of id's queue: an Idle starts a new
// session in which every command may be offered again.
func clearNotNow(tx *bbolt.Tx, id string) error {
	p := prefix(id)
	q := tx.Bucket(bQueue)
	var keys, vals [][]byte
	c := q.Cursor()
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		if len(v) > 0 && v[0] == flagNotNow {
			nv := clone(v)
			nv[0] = flagQueued
			keys, vals = append(keys, clone(k)), append(vals, nv)
		}
	}
	for i := range keys {
		if err := q.Put(keys[i], vals[i]); err != nil {
			return err
		}
	}
	return nil
}

// StoreReportAndNext implements storage.CommandQueue.
func (s *Store) StoreReportAndNext(ctx context.Context, id string, r *mdm.Report, raw []byte, now time.Time) (string, *mdm.Command, error) {
	rt, _, cmd, err := s.reportAndNext(id, nil, r, raw, nil, now)
	return rt, cmd, err
}

// StoreReportInventoryAndNext implements storage.CommandQueue. The
// report, the inventory and the next command share one write transaction.
func (s *Store) StoreReportInventoryAndNext(ctx context.Context, id string, r *mdm.Report, raw []byte, inv *mdm.Inventory, now time.Time) (string, bool, *mdm.Command, error) {
	return s.reportAndNext(id, nil, r, raw, inv, now)
}

// StoreBoundReportAndNext implements storage.CommandQueue. The binding is
// read in the transaction that reads the queue or records the report,
// rather than in a read transaction of its own per request.
func (s *Store) StoreBoundReportAndNext(ctx context.Context, id, certHash string, r *mdm.Report, raw []byte, inv *mdm.Inventory, now time.Time) (string, bool, *mdm.Command, error) {
	hash := []byte(certHash)
	return s.reportAndNext(id, hash, r, raw, inv, now)
}

// certBoundIn is CertBound in tx.
func certBoundIn(tx *bbolt.Tx, id string, certHash []byte) bool {
	owner := tx.Bucket(bCerts).Get(certHash)
	return owner != nil && string(owner) == parentID(id)
}

// reportAndNext records r and finds the next command. With certHash not
// nil, it first checks that certHash is bound to id, in the same
// transaction, and records nothing when it is not.
func (s *Store) reportAndNext(id string, certHash []byte, r *mdm.Report, raw []byte, inv *mdm.Inventory, now time.Time) (string, bool, *mdm.Command, error) {
	if r.Status != mdm.Idle {
		return s.storeReportAndNext(id, certHash, r, raw, inv, now)
	}
	// The common case: read only. Marks from an earlier session are
	// cleared in a write transaction only when there are any.
	var (
		cmd    *mdm.Command
		marked bool
	)
	err := s.db.View(func(tx *bbolt.Tx) error {
		if certHash != nil && !certBoundIn(tx, id, certHash) {
			return fmt.Errorf("%s: %w", id, storage.ErrNotBound)
		}
		var err error
		cmd, marked, err = next(tx, id, false)
		return err
	})
	if err != nil || !marked {
		return "", false, cmd, err
	}
	err = s.db.Batch(func(tx *bbolt.Tx) error {
		if err := clearNotNow(tx, id); err != nil {
			return err
		}
		var err error
		cmd, _, err = next(tx, id, false)
		return err
	})
	return "", false, cmd, err
}

// storeReportAndNext records a report other than Idle and, for an
// acknowledged DeviceInformation command, merges inv (if not nil) into the
// device record, then finds the next command: one Batch for all three.
// With certHash not nil, nothing is written unless it is bound to id.
func (s *Store) storeReportAndNext(id string, certHash []byte, r *mdm.Report, raw []byte, inv *mdm.Inventory, now time.Time) (string, bool, *mdm.Command, error) {
	var (
		cmd     *mdm.Command
		rt      string
		stored  bool
		unbound bool
	)
	err := s.db.Batch(func(tx *bbolt.Tx) error {
		var err error
		stored, unbound = false, false // Batch may run this again on its own
		if certHash != nil && !certBoundIn(tx, id, certHash) {
			// Not an error: that would roll back the others' reports
			// in the batch and run them again.
			unbound = true
			return nil
		}
		if rt, err = s.storeReport(tx, id, r, raw, now); err != nil {
			return err
		}
		if inv != nil && rt == "DeviceInformation" && r.Status == mdm.Acknowledged {
			// A device record that is missing or does not decode keeps
			// the report alone, as a separate inventory write did: the
			// service then tries the inventory on its own and logs why.
			if d, err := getDevice(tx, id); err == nil {
				if err := applyInventory(tx, d, inv, now); err != nil {
					return err
				}
				stored = true
			}
		}
		cmd, _, err = next(tx, id, true)
		return err
	})
	if err == nil && unbound {
		return "", false, nil, fmt.Errorf("%s: %w", id, storage.ErrNotBound)
	}
	return rt, stored, cmd, err
}

// Command implements storage.CommandQueue.
func (s *Store) Command(ctx context.Context, id, uuid string) (*mdm.CommandRecord, error) {
	var rec *mdm.CommandRecord
	err := s.db.View(func(tx *bbolt.Tx) error {
		seq := s.commandSeq(tx, id, uuid)
		if seq == nil {
			return fmt.Errorf("command %s for %s: %w", uuid, id, storage.ErrNotFound)
		}
		var err error
		if rec, err = getRecord(tx, seq); err != nil {
			return err
		}
		return readBodies(tx, seq, rec)
	})
	return rec, err
}

// Commands implements storage.CommandQueue. The enrollment's commands are
// found through cmdidx and cmdfin (finished) and its queue (pending), and
// returned in queue order.
func (s *Store) Commands(ctx context.Context, id string) ([]*mdm.CommandRecord, error) {
	var out []*mdm.CommandRecord
	err := s.db.View(func(tx *bbolt.Tx) error {
		p := prefix(id)
		var seqs [][]byte
		c := tx.Bucket(bCmdIdx).Cursor()
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			seqs = append(seqs, v)
		}
		q := tx.Bucket(bQueue).Cursor()
		for k, _ := q.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = q.Next() {
			seqs = append(seqs, k[len(p):])
		}
		seqs = append(seqs, logged(tx, id)...)
		slices.SortFunc(seqs, bytes.Compare) // big-endian: numeric order
		seqs = slices.CompactFunc(seqs, bytes.Equal)
		for _, seq := range seqs {
			rec, err := getRecord(tx, seq)
			if err != nil {
				return err
			}
			if err := readBodies(tx, seq, rec); err != nil {
				return err
			}
			out = append(out, rec)
		}
		return nil
	})
	return out, err
}

// HasPending implements storage.CommandQueue.
func (s *Store) HasPending(ctx context.Context, id string) (bool, error) {
	var ok bool
	err := s.db.View(func(tx *bbolt.Tx) error {
		p := prefix(id)
		k, _ := tx.Bucket(bQueue).Cursor().Seek(p)
		ok = k != nil && bytes.HasPrefix(k, p)
		return nil
	})
	return ok, err
}

// clearQueue cancels every pending command of id (on re-enrollment).
func (s *Store) clearQueue(tx *bbolt.Tx, id string, now time.Time) error {
	p := prefix(id)
	q := tx.Bucket(bQueue)
	var keys, uuids [][]byte
	c := q.Cursor()
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		keys, uuids = append(keys, clone(k)), append(uuids, clone(queueUUID(v)))
	}
	for i, k := range keys {
		if rec, err := getRecord(tx, k[len(p):]); err == nil {
			rec.Status = mdm.StatusCanceled
			rec.UpdatedAt = now
			rec.History = append(rec.History, mdm.StatusEvent{Status: mdm.StatusCanceled, At: now})
			if err := putRecord(tx, k[len(p):], rec); err != nil {
				return err
			}
		}
		if err := q.Delete(k); err != nil {
			return err
		}
		if err := s.fin.log(tx, id, string(uuids[i]), k[len(p):]); err != nil {
			return err
		}
	}
	return nil
}
