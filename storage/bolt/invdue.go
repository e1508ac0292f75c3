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
//	invat   <id>                   <requested-at key>: what invdue holds for id
var (
	bInvDue = []byte("invdue")
	bInvAt  = []byte("invat")
)

func init() { allBuckets = append(allBuckets, bInvDue, bInvAt) }

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

// indexInventory brings the inventory index in line with d, which is being
// written: a device enrollment that is enabled is indexed under its
// InventoryRequestedAt; anything else (a user channel, a checked-out Mac)
// is not.
func indexInventory(tx *bbolt.Tx, d *mdm.Device) error {
	return setInventoryKey(tx, d.ID, d.Enabled && d.ParentID == "", d.InventoryRequestedAt)
}

func setInventoryKey(tx *bbolt.Tx, id string, indexed bool, requested time.Time) error {
	at, due := tx.Bucket(bInvAt), tx.Bucket(bInvDue)
	k := []byte(id)
	old := at.Get(k)
	var want []byte
	if indexed {
		want = invTime(requested)
	}
	if bytes.Equal(old, want) {
		return nil
	}
	if old != nil {
		if err := due.Delete(append(clone(old), k...)); err != nil {
			return err
		}
		if want == nil {
			return at.Delete(k)
		}
	}
	if err := due.Put(append(want, k...), nil); err != nil {
		return err
	}
	return at.Put(k, want[:8])
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
		id        string
		indexed   bool
		requested time.Time
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
		entries = append(entries, entry{string(k), d.Enabled && d.ParentID == "", d.InventoryRequestedAt})
		return nil
	})
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := setInventoryKey(tx, e.id, e.indexed, e.requested); err != nil {
			return err
		}
	}
	return nil
}
