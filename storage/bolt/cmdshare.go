package bolt

import (
	"encoding/binary"
	"fmt"

	bbolt "go.etcd.io/bbolt"
)

// A command queued for several Macs in one call (an admin's bulk enqueue)
// has one body for all of them. It is stored once (schema 10):
//
//	cmdshared  <seq>   the stored body, under the first Mac's sequence
//	cmdsharen  <seq>   how many cmdbodies entries refer to it, 8 bytes
//
// and each Mac's cmdbodies entry is a reference to it: blobRef followed by
// that sequence. One copy instead of one a Mac keeps a bulk enqueue from
// writing and paging the same plist 10,000 times.
var (
	bCmdShared = []byte("cmdshared")
	bCmdShareN = []byte("cmdsharen")
)

func init() { allBuckets = append(allBuckets, bCmdShared, bCmdShareN) }

// shareMin is the smallest stored body that is shared: below it a
// reference and its count would save nothing.
const shareMin = 64

// isBodyRef reports whether a cmdbodies value refers to a shared body.
func isBodyRef(v []byte) bool { return len(v) == 9 && v[0] == blobRef }

// putSharedBody stores body once under seq for n references and returns
// the reference that each of them stores in cmdbodies.
func putSharedBody(tx *bbolt.Tx, seq, body []byte, n int) ([]byte, error) {
	shared := tx.Bucket(bCmdShared)
	shared.FillPercent = appendFill
	if err := shared.Put(seq, body); err != nil {
		return nil, err
	}
	counts := tx.Bucket(bCmdShareN)
	counts.FillPercent = appendFill
	if err := counts.Put(seq, u64(uint64(n))); err != nil {
		return nil, err
	}
	return append([]byte{blobRef}, seq...), nil
}

// storedBody returns the stored form of the body of the command at seq,
// following a reference to a shared body, or nil if there is none.
func storedBody(tx *bbolt.Tx, seq []byte) ([]byte, error) {
	v := tx.Bucket(bCmdRaw).Get(seq)
	if !isBodyRef(v) {
		return v, nil
	}
	body := tx.Bucket(bCmdShared).Get(v[1:])
	if body == nil {
		return nil, fmt.Errorf("shared body %x is missing", v[1:])
	}
	return body, nil
}

// deleteBody deletes the body of the command at seq. A shared body goes
// with its last reference; one whose count is missing or unreadable is
// kept, since other commands may still need it.
func deleteBody(tx *bbolt.Tx, seq []byte) error {
	bodies := tx.Bucket(bCmdRaw)
	if v := bodies.Get(seq); isBodyRef(v) {
		owner := clone(v[1:])
		counts := tx.Bucket(bCmdShareN)
		var n uint64
		if c := counts.Get(owner); len(c) == 8 {
			n = binary.BigEndian.Uint64(c)
		}
		switch {
		case n > 1:
			if err := counts.Put(owner, u64(n-1)); err != nil {
				return err
			}
		case n == 1:
			if err := counts.Delete(owner); err != nil {
				return err
			}
			if err := tx.Bucket(bCmdShared).Delete(owner); err != nil {
				return err
			}
		}
	}
	return bodies.Delete(seq)
}
