package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/storage"
)

var _ storage.RetentionStore = (*Store)(nil)

// PruneCommands implements storage.RetentionStore. The cursor is the
// command sequence, in hex. Records are read in sequence order, which is
// queue order, so the scan stops at the first command queued at or after
// before.
func (s *Store) PruneCommands(ctx context.Context, before time.Time, after string, limit int) (int, string, error) {
	if limit <= 0 {
		return 0, "", fmt.Errorf("prune commands: limit %d", limit)
	}
	var start []byte
	if after != "" {
		b, err := hex.DecodeString(after)
		if err != nil || len(b) != 8 {
			return 0, "", fmt.Errorf("prune commands: bad cursor %q", after)
		}
		start = u64(binary.BigEndian.Uint64(b) + 1)
	}
	deleted, next := 0, ""
	err := s.db.Update(func(tx *bbolt.Tx) error {
		type victim struct{ seq, idx []byte }
		var victims []victim
		queue := tx.Bucket(bQueue)
		c := tx.Bucket(bCmds).Cursor()
		k, v := c.First()
		if start != nil {
			k, v = c.Seek(start)
		}
		scanned := 0
		var last []byte
		for ; k != nil; k, v = c.Next() {
			if scanned == limit {
				next = hex.EncodeToString(last)
				break
			}
			rec, err := decodeRecord(v)
			if err != nil {
				return fmt.Errorf("command %x: %w", k, err)
			}
			if !rec.QueuedAt.Before(before) {
				break
			}
			scanned++
			last = clone(k)
			if queue.Get(key(rec.EnrollmentID, k)) == nil && rec.UpdatedAt.Before(before) {
				victims = append(victims, victim{clone(k), key(rec.EnrollmentID, []byte(rec.UUID))})
			}
		}
		if len(victims) == 0 {
			return nil
		}
		// Finished commands not yet moved into cmdidx are found through the
		// log; move it first so one delete from cmdidx forgets each.
		if err := s.fin.flush(tx); err != nil {
			return err
		}
		for _, b := range [][]byte{bCmds, bCmdRes} {
			bk := tx.Bucket(b)
			for _, vi := range victims {
				if err := bk.Delete(vi.seq); err != nil {
					return err
				}
			}
		}
		for _, vi := range victims {
			if err := deleteBody(tx, vi.seq); err != nil {
				return err
			}
		}
		idx := tx.Bucket(bCmdIdx)
		for _, vi := range victims {
			if bytes.Equal(idx.Get(vi.idx), vi.seq) {
				if err := idx.Delete(vi.idx); err != nil {
					return err
				}
			}
		}
		deleted = len(victims)
		return nil
	})
	if err != nil {
		return 0, "", err
	}
	return deleted, next, nil
}

// PruneHistory implements storage.RetentionStore. The cursor is a device ID.
func (s *Store) PruneHistory(ctx context.Context, keep int, after string, limit int) (int, string, error) {
	if keep < 0 || limit <= 0 {
		return 0, "", fmt.Errorf("prune history: keep %d, limit %d", keep, limit)
	}
	deleted, next := 0, ""
	err := s.db.Update(func(tx *bbolt.Tx) error {
		hist := tx.Bucket(bMSHist)
		c := tx.Bucket(bMSState).Cursor()
		k, _ := c.First()
		if after != "" {
			if k, _ = c.Seek([]byte(after)); k != nil && string(k) == after {
				k, _ = c.Next()
			}
		}
		n := 0
		for ; k != nil; k, _ = c.Next() {
			if n == limit {
				break
			}
			n++
			next = string(k)
			p := prefix(string(k))
			var keys [][]byte
			hc := hist.Cursor()
			for hk, _ := hc.Seek(p); hk != nil && bytes.HasPrefix(hk, p); hk, _ = hc.Next() {
				if len(hk) == len(p)+8 { // not a longer ID sharing the prefix
					keys = append(keys, clone(hk))
				}
			}
			if len(keys) <= keep {
				continue
			}
			for _, hk := range keys[:len(keys)-keep] {
				if err := hist.Delete(hk); err != nil {
					return err
				}
				deleted++
			}
		}
		if k == nil {
			next = ""
		}
		return nil
	})
	if err != nil {
		return 0, "", err
	}
	return deleted, next, nil
}
