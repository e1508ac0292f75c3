package bolt

import (
	"bytes"
	"fmt"
	"slices"

	bbolt "go.etcd.io/bbolt"
)

// Schema 2 kept command records, bodies and results under
// <enrollment> 0x00 <8-byte sequence>. Schema 3 keys them by the sequence
// alone in new buckets, so that a pass queueing commands for many Macs
// appends to the end of each bucket instead of rewriting pages all over it.
var (
	bCmdsV2   = []byte("cmds")
	bCmdRawV2 = []byte("cmdraw")
	bCmdResV2 = []byte("cmdres")
)

// migrateChunk bounds one upgrade transaction: a fleet's whole command
// history rewritten in one transaction would hold all of it in memory.
var migrateChunk = 20000

// migrateToV3 moves every entry of the schema 2 command buckets to its
// schema 3 bucket, in transactions of migrateChunk entries, and then drops
// the old buckets. Each transaction moves entries (put new, delete old)
// atomically, so an upgrade interrupted by a crash resumes where it stopped
// at the next open. The caller has already written the current schema
// version (3 or later), so an older binary refuses a half-moved file
// instead of reading part of it.
func migrateToV3(db *bbolt.DB) error {
	moves := []struct{ from, to []byte }{{bCmdsV2, bCmds}, {bCmdRawV2, bCmdRaw}, {bCmdResV2, bCmdRes}}
	for _, m := range moves {
		for {
			var done bool
			err := db.Update(func(tx *bbolt.Tx) error {
				old := tx.Bucket(m.from)
				if old == nil {
					done = true
					return nil
				}
				dst := tx.Bucket(m.to)
				if old.Sequence() > dst.Sequence() {
					// The command sequence lives on the records bucket.
					if err := dst.SetSequence(old.Sequence()); err != nil {
						return err
					}
				}
				type entry struct{ oldKey, seq, v []byte }
				var batch []entry
				c := old.Cursor()
				for k, v := c.First(); k != nil && len(batch) < migrateChunk; k, v = c.Next() {
					if len(k) < 9 || k[len(k)-9] != 0 || v == nil {
						return fmt.Errorf("%s: malformed key %q", m.from, k)
					}
					batch = append(batch, entry{clone(k), clone(k[len(k)-8:]), clone(v)})
				}
				if len(batch) == 0 {
					done = true
					return tx.DeleteBucket(m.from)
				}
				slices.SortFunc(batch, func(a, b entry) int { return bytes.Compare(a.seq, b.seq) })
				for _, e := range batch {
					if dst.Get(e.seq) != nil {
						return fmt.Errorf("%s: sequence %x stored twice", m.from, e.seq)
					}
					if err := dst.Put(e.seq, e.v); err != nil {
						return err
					}
					if err := old.Delete(e.oldKey); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("upgrade to schema 3: %w", err)
			}
			if done {
				break
			}
		}
	}
	return nil
}
