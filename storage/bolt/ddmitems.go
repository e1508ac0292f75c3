package bolt

import (
	"bytes"
	"encoding/json"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/mdm/ddm"
)

// Status items live one key each, so that a status report rewrites only
// the items it changed instead of the whole merged record (up to 512 items
// and 128 KiB) inside the write transaction:
//
//	ddmitems  <id> 0x00 <item name>   the item's JSON value, compacted
//
// The record under ddm <id> keeps everything else, with no items.
var bDDMItems = []byte("ddmitems")

func init() { allBuckets = append(allBuckets, bDDMItems) }

// loadDDMItems reads the status items stored apart for id into r, over
// any the record itself holds, and returns them: what putDDMRecord must
// compare with. The values are copies: they outlive the transaction.
func loadDDMItems(tx *bbolt.Tx, id string, r *ddm.Record) map[string]json.RawMessage {
	stored := map[string]json.RawMessage{}
	p := prefix(id)
	c := tx.Bucket(bDDMItems).Cursor()
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		if r.Status.Items == nil {
			r.Status.Items = map[string]json.RawMessage{}
		}
		name, val := string(k[len(p):]), clone(v)
		r.Status.Items[name] = val
		stored[name] = val
	}
	return stored
}

// putDDMRecord stores r: the record without its items, then only the items
// that differ from old (the items as loaded), deleting the ones gone.
func putDDMRecord(tx *bbolt.Tx, id string, r *ddm.Record, old map[string]json.RawMessage) error {
	items := r.Status.Items
	r.Status.Items = nil
	v, err := json.Marshal(r)
	r.Status.Items = items
	if err != nil {
		return fmt.Errorf("encode declarative record %s: %w", id, err)
	}
	if err := tx.Bucket(bDDM).Put([]byte(id), v); err != nil {
		return err
	}
	b := tx.Bucket(bDDMItems)
	for name, val := range items {
		ov, had := old[name]
		if had && bytes.Equal(ov, val) {
			continue
		}
		// Compacted as json.Marshal stored them in the whole record; this
		// also refuses invalid JSON, as encoding the record did.
		var buf bytes.Buffer
		if err := json.Compact(&buf, val); err != nil {
			return fmt.Errorf("encode status item %q of %s: %w", name, id, err)
		}
		if had && bytes.Equal(ov, buf.Bytes()) {
			continue
		}
		if err := b.Put(key(id, []byte(name)), buf.Bytes()); err != nil {
			return err
		}
	}
	for name := range old {
		if _, ok := items[name]; !ok {
			if err := b.Delete(key(id, []byte(name))); err != nil {
				return err
			}
		}
	}
	return nil
}

// migrateDDMItems (schema 7) moves the status items of every declarative
// record out of the record into ddmitems. A record without items is left
// as it is.
func migrateDDMItems(tx *bbolt.Tx) error {
	type kv struct{ k, v []byte }
	var todo []kv
	err := tx.Bucket(bDDM).ForEach(func(k, v []byte) error {
		// Only records whose JSON holds items need the rewrite; the probe
		// skips decoding the others.
		if bytes.Contains(v, []byte(`"items"`)) {
			todo = append(todo, kv{clone(k), clone(v)})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, e := range todo {
		r := new(ddm.Record)
		if err := json.Unmarshal(e.v, r); err != nil {
			// Left as it is: reading it fails as it did before, for that
			// enrollment only, instead of the whole file failing to open.
			continue
		}
		if err := putDDMRecord(tx, string(e.k), r, nil); err != nil {
			return err
		}
	}
	return nil
}
