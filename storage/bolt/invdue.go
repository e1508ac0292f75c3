package bolt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/mdm"
)

// The inventory index (schema 5): the enabled device enrollments ordered by
// when their inventory was last requested, so that InventoryDue reads only
// the devices that are due, not every device record at every refresh
// check (every flush interval, 5 s by default).
//
//	invdue  <requested-at key><id> (empty)
//
// A device's entry is found from its record (invKey), which every writer has
// read in the same transaction; schemas 5 to 7 also kept a reverse index,
// invat (<id> -> <requested-at key>), dropped at open since schema 8.
var (
	bInvDue = []byte("invdue")
	bInvAt  = []byte("invat") // schemas 5-7 only
)

func init() { allBuckets = append(allBuckets, bInvDue) }

// invTime is the 8-byte big-endian key of a request time: nanoseconds since
// 1970, with never (the zero time) and anything before 1970 as 0, so those
// sort first, and anything past 2262 as the largest value.
func invTime(t time.Time) []byte {
	var n uint64
	switch {
	case t.IsZero() || t.Unix() < 0:
	case t.Unix() >= math.MaxInt64/int64(time.Second):
		n = math.MaxInt64
	default:
		n = uint64(t.UnixNano())
	}
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), n)
}

// invKey is the requested-at key under which d is indexed, or nil if it is
// not: a device enrollment that is enabled is indexed under its
// InventoryRequestedAt; anything else (a user channel, a checked-out Mac)
// is not.
func invKey(d *mdm.Device) []byte {
	if d == nil || !d.Enabled || d.ParentID != "" {
		return nil
	}
	return invTime(d.InventoryRequestedAt)
}

// indexInventory moves id's entry in the inventory index from was (the
// invKey of the record being replaced, nil if none or not indexed) to
// want. It writes nothing when they are equal.
func indexInventory(tx *bbolt.Tx, id string, was, want []byte) error {
	if bytes.Equal(was, want) {
		return nil
	}
	due := tx.Bucket(bInvDue)
	// New entries are keyed by the time of the write, so nearly always
	// past the last key: split full pages, as in the command buckets.
	due.FillPercent = appendFill
	if was != nil {
		k := make([]byte, 0, len(was)+len(id))
		if err := due.Delete(append(append(k, was...), id...)); err != nil {
			return err
		}
	}
	if want == nil {
		return nil
	}
	k := make([]byte, 0, len(want)+len(id))
	return due.Put(append(append(k, want...), id...), nil)
}

// scanInventoryKey returns the requested-at key under which the index holds
// id, or nil, by reading the whole index: only for a record that cannot be
// decoded, whose invKey is unknown.
func scanInventoryKey(tx *bbolt.Tx, id string) []byte {
	c := tx.Bucket(bInvDue).Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(k) > 8 && string(k[8:]) == id {
			return clone(k[:8])
		}
	}
	return nil
}

// inventoryDue lists up to limit (0: all) indexed IDs requested before
// `before`, longest waiting first.
func inventoryDue(tx *bbolt.Tx, before time.Time, limit int) []string {
	var ids []string
	end := invTime(before)
	c := tx.Bucket(bInvDue).Cursor()
	for k, _ := c.First(); k != nil && len(k) > 8 && bytes.Compare(k[:8], end) < 0; k, _ = c.Next() {
		ids = append(ids, string(k[8:]))
		if limit > 0 && len(ids) >= limit {
			break
		}
	}
	return ids
}

// migrateToV5 builds the inventory index from the device records. It
// decodes only the three fields the index needs.
func migrateToV5(tx *bbolt.Tx) error {
	type entry struct {
		id  string
		key []byte
	}
	var entries []entry
	err := tx.Bucket(bDevices).ForEach(func(k, v []byte) error {
		var d struct {
			ParentID             string    `json:"parent_id"`
			Enabled              bool      `json:"enabled"`
			InventoryRequestedAt time.Time `json:"inventory_requested_at"`
		}
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("decode device %s: %w", k, err)
		}
		key := invKey(&mdm.Device{ParentID: d.ParentID, Enabled: d.Enabled, InventoryRequestedAt: d.InventoryRequestedAt})
		entries = append(entries, entry{string(k), key})
		return nil
	})
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := indexInventory(tx, e.id, nil, e.key); err != nil {
			return err
		}
	}
	return nil
}

// migrateToV8 drops invat, the reverse index of schemas 5 to 7: writers
// find a device's old entry from its record.
func migrateToV8(tx *bbolt.Tx) error {
	if tx.Bucket(bInvAt) == nil {
		return nil
	}
	return tx.DeleteBucket(bInvAt)
}
