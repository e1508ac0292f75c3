package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/mdm/ddm"
)

// Declarative management buckets:
//
//	ddm      <id>                          JSON ddm.Record, without its status items
//	ddmitems <id> 0x00 <item name>         JSON status item (ddmitems.go)
//	ddmhist  <id> 0x00 <seq>               JSON ddm.Event (newest ddm.HistoryLimit kept)
//	ddmdue   <deadline nanos> <id>         (empty): unconfirmed enforcements by deadline
var (
	bDDM     = []byte("ddm")
	bDDMHist = []byte("ddmhist")
	bDDMDue  = []byte("ddmdue")
)

func init() { allBuckets = append(allBuckets, bDDM, bDDMHist, bDDMDue) }

var _ ddm.Store = (*Store)(nil)

func getDDM(tx *bbolt.Tx, id string) (*ddm.Record, error) {
	r, _, err := getDDMItems(tx, id)
	return r, err
}

// getDDMItems returns the record of id and the items stored apart.
func getDDMItems(tx *bbolt.Tx, id string) (*ddm.Record, map[string]json.RawMessage, error) {
	r := new(ddm.Record)
	v := tx.Bucket(bDDM).Get([]byte(id))
	if v == nil {
		return r, nil, nil
	}
	if err := json.Unmarshal(v, r); err != nil {
		return nil, nil, fmt.Errorf("decode declarative record %s: %w", id, err)
	}
	return r, loadDDMItems(tx, id, r), nil
}

func ddmDueKey(r *ddm.Record, id string) []byte {
	if !r.Unconfirmed() {
		return nil
	}
	return append(unixNanos(r.Enforcement.Deadline), id...)
}

// DDMRecord implements ddm.Store.
func (s *Store) DDMRecord(ctx context.Context, id string) (*ddm.Record, error) {
	var r *ddm.Record
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		r, err = getDDM(tx, id)
		return err
	})
	return r, err
}

// UpdateDDM implements ddm.Store.
func (s *Store) UpdateDDM(ctx context.Context, id string, fn func(r *ddm.Record) ([]ddm.Event, error)) error {
	if id == "" || bytes.IndexByte([]byte(id), 0) >= 0 {
		return fmt.Errorf("update declarative record: invalid enrollment id")
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		r, old, err := getDDMItems(tx, id)
		if err != nil {
			return err
		}
		oldDue := ddmDueKey(r, id)
		events, err := fn(r)
		if err != nil {
			return err
		}
		if err := putDDMRecord(tx, id, r, old); err != nil {
			return err
		}
		due := tx.Bucket(bDDMDue)
		if newDue := ddmDueKey(r, id); !bytes.Equal(oldDue, newDue) {
			if oldDue != nil {
				if err := due.Delete(oldDue); err != nil {
					return err
				}
			}
			if newDue != nil {
				if err := due.Put(newDue, nil); err != nil {
					return err
				}
			}
		}
		if len(events) == 0 {
			return nil
		}
		return appendDDMHistory(tx.Bucket(bDDMHist), id, events)
	})
}

func appendDDMHistory(b *bbolt.Bucket, id string, events []ddm.Event) error {
	for _, ev := range events {
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		v, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("encode status event: %w", err)
		}
		if err := b.Put(key(id, u64(seq)), v); err != nil {
			return err
		}
	}
	// Drop the oldest beyond the limit.
	p := prefix(id)
	c := b.Cursor()
	n := 0
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
		n++
	}
	var drop [][]byte
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p) && n > ddm.HistoryLimit; k, _ = c.Next() {
		drop = append(drop, clone(k))
		n--
	}
	for _, k := range drop {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// DDMHistory implements ddm.Store.
func (s *Store) DDMHistory(ctx context.Context, id string) ([]ddm.Event, error) {
	var out []ddm.Event
	err := s.db.View(func(tx *bbolt.Tx) error {
		p := prefix(id)
		c := tx.Bucket(bDDMHist).Cursor()
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			var ev ddm.Event
			if err := json.Unmarshal(v, &ev); err != nil {
				return fmt.Errorf("decode status event of %s: %w", id, err)
			}
			out = append(out, ev)
		}
		return nil
	})
	return out, err
}

// DDMUnconfirmed implements ddm.Store.
func (s *Store) DDMUnconfirmed(ctx context.Context, before time.Time, limit int) ([]string, error) {
	var ids []string
	err := s.db.View(func(tx *bbolt.Tx) error {
		end := unixNanos(before)
		c := tx.Bucket(bDDMDue).Cursor()
		for k, _ := c.First(); k != nil && len(k) > 8; k, _ = c.Next() {
			if bytes.Compare(k[:8], end) >= 0 || (limit > 0 && len(ids) >= limit) {
				break
			}
			ids = append(ids, string(k[8:]))
		}
		return nil
	})
	return ids, err
}
