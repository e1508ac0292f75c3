package bolt

import (
	"bytes"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// One-time SCEP challenges by expiry, so that challenges never used (a
// profile downloaded and not installed, or downloaded by a stranger) are
// deleted once expired instead of staying in the file forever:
//
//	challdue   <expiry unix nanos><challenge key>   (empty)
var bChallDue = []byte("challdue")

func init() { allBuckets = append(allBuckets, bChallDue) }

// challSweepBatch bounds the expired challenges one Take deletes, so that
// a backlog (many profiles downloaded and never installed) is worked off
// over the following enrolments instead of inside one of them.
const challSweepBatch = 256

func challDueKey(expires time.Time, key string) []byte {
	return append(unixNanos(expires), key...)
}

// sweepChallenges deletes up to challSweepBatch challenges that expired at
// or before now, oldest first.
func sweepChallenges(tx *bbolt.Tx, now time.Time) error {
	due, chall := tx.Bucket(bChallDue), tx.Bucket(bChall)
	limit := unixNanos(now)
	c := due.Cursor()
	for n, k := 0, firstKey(c); k != nil && n < challSweepBatch; n, k = n+1, firstKey(c) {
		if bytes.Compare(k[:8], limit) > 0 {
			return nil
		}
		key := k[8:]
		// Only if the challenge still has this expiry (Put may have
		// replaced it).
		if v := chall.Get(key); v != nil && bytes.Equal(v, k[:8]) {
			if err := chall.Delete(key); err != nil {
				return err
			}
		}
		if err := due.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func firstKey(c *bbolt.Cursor) []byte {
	k, _ := c.First()
	return k
}
