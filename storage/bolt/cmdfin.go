package bolt

import (
	"bytes"
	"slices"
	"sync"

	bbolt "go.etcd.io/bbolt"
)

// A finished command is found by enrollment and UUID through cmdidx, keyed
// <id> 0x00 <uuid>. Inserting there when the command finishes lands in a
// random leaf, so every commit wrote one 16 KB page per command it
// finished. Since schema 6 a finished command is first
// appended to cmdfin, a log keyed by its own sequence whose last page is
// shared by everything finished in a commit. The log is moved into cmdidx
// in bulk, each leaf written once for all its new entries, when it reaches
// finFlushAt entries, when the file is opened and when it is closed.
//
// Until it is moved, a command in the log is found in two ways. Write
// transactions (an enqueue checking that its UUID is new) look it up in
// an in-memory map, which is cheap and exact for them: entries are added
// in the transaction that logs them and removed only after the move has
// committed, and write transactions run one at a time. Read transactions
// (the admin API's command history) walk the log in their own snapshot,
// which always agrees with cmdidx in that snapshot however long ago it
// was taken.
//
//	cmdfin   <n>                     <seq> <id> 0x00 <uuid> of a finished command not yet in cmdidx

// finFlushAt bounds what one move costs: it touches at most that many
// leaves of cmdidx, each decoded, copied and written in one transaction, so
// its memory stays bounded whatever the fleet's size. Chosen with
// BenchmarkFinishedFlush; the figures are in docs/benchmarks.md
// ("Finished commands through a log").
const finFlushAt = 512

var bCmdFin = []byte("cmdfin")

func init() { allBuckets = append(allBuckets, bCmdFin) }

type finished struct {
	flushAt int // log length that moves it (finFlushAt)

	mu sync.Mutex
	// key(id, uuid) → seq of logged commands. It may also hold entries
	// already moved (until the move's commit handler runs) and entries
	// whose transaction rolled back; both name a command that exists
	// under that UUID with that sequence, so neither misleads a lookup.
	m map[string][]byte
}

func newFinished() *finished { return &finished{flushAt: finFlushAt, m: make(map[string][]byte)} }

// log records that id's command uuid, with sequence seq, has left the
// queue, and moves the log into cmdidx once it is long enough. It does
// not look in cmdidx first: only a command queued by a version before
// schema 4 is there already, and the move writes it again unchanged,
// where a look-up would read a random leaf of cmdidx for every report.
func (f *finished) log(tx *bbolt.Tx, id, uuid string, seq []byte) error {
	k := key(id, []byte(uuid))
	b := tx.Bucket(bCmdFin)
	// Keys only grow: split full pages, so the last leaf, which every
	// append decodes and copies, holds about a third fewer entries on average.
	b.FillPercent = appendFill
	n, err := b.NextSequence()
	if err != nil {
		return err
	}
	v := make([]byte, 0, len(seq)+len(k))
	v = append(append(v, seq...), k...)
	if err := b.Put(u64(n), v); err != nil {
		return err
	}
	f.mu.Lock()
	f.m[string(k)] = clone(seq)
	f.mu.Unlock()
	// Every move recreates the bucket, whose sequence then starts again
	// at 1: n is the log's length (or more, in a file whose log an older
	// version emptied key by key, which then moves once early).
	if n >= uint64(f.flushAt) {
		return f.flush(tx)
	}
	return nil
}

// lookup returns the sequence (a copy) of the logged command k
// (key(id, uuid)), or nil.
func (f *finished) lookup(tx *bbolt.Tx, k []byte) []byte {
	if tx.Writable() {
		f.mu.Lock()
		defer f.mu.Unlock()
		return clone(f.m[string(k)])
	}
	c := tx.Bucket(bCmdFin).Cursor()
	for n, v := c.First(); n != nil; n, v = c.Next() {
		if bytes.Equal(v[8:], k) {
			return clone(v[:8])
		}
	}
	return nil
}

// logged returns the sequences of id's logged commands, as seen by tx.
func logged(tx *bbolt.Tx, id string) [][]byte {
	p := prefix(id)
	var seqs [][]byte
	c := tx.Bucket(bCmdFin).Cursor()
	for n, v := c.First(); n != nil; n, v = c.Next() {
		if bytes.HasPrefix(v[8:], p) {
			seqs = append(seqs, v[:8])
		}
	}
	return seqs
}

// flush moves the whole log into cmdidx, in key order.
func (f *finished) flush(tx *bbolt.Tx) error {
	type entry struct{ k, seq []byte }
	var entries []entry
	c := tx.Bucket(bCmdFin).Cursor()
	for n, v := c.First(); n != nil; n, v = c.Next() {
		entries = append(entries, entry{clone(v[8:]), clone(v[:8])})
	}
	if len(entries) == 0 {
		return nil
	}
	slices.SortFunc(entries, func(a, b entry) int { return bytes.Compare(a.k, b.k) })
	idx := tx.Bucket(bCmdIdx)
	for _, e := range entries {
		if err := idx.Put(e.k, e.seq); err != nil {
			return err
		}
	}
	// Dropping the bucket frees its pages at once, rather than emptying
	// them key by key.
	if err := tx.DeleteBucket(bCmdFin); err != nil {
		return err
	}
	if _, err := tx.CreateBucket(bCmdFin); err != nil {
		return err
	}
	tx.OnCommit(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, e := range entries {
			delete(f.m, string(e.k))
		}
	})
	return nil
}
