package bolt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// The webhook outbox's due-time index (schema 9): one key per delivery in
// whout, so that DueWebhooks reads only the due deliveries instead of
// decoding the whole outbox at every poll (every 2 s while it is not
// empty), which a receiver down for a day fills with backing-off retries.
//
//	whdue  <next-at key><event ID> 0x00 <endpoint>   (empty)
//
// The suffix is the delivery's whout key, so byte order is NextAt, then
// event ID, then endpoint: the order DueWebhooks returns, as PostgreSQL's
// ORDER BY next_at, event_id, endpoint does. Every write to whout writes
// its entry here in the same transaction.
var bWebhookDue = []byte("whdue")

func init() { allBuckets = append(allBuckets, bWebhookDue) }

// webhookDueTime is the 8-byte key of a NextAt: Unix nanoseconds with the sign
// bit flipped, so that byte order is time order, times before 1678 (the
// zero time among them) as the smallest key and after 2262 as the largest.
func webhookDueTime(t time.Time) []byte {
	var n uint64
	switch {
	case t.Before(time.Unix(0, math.MinInt64)):
	case t.After(time.Unix(0, math.MaxInt64)):
		n = math.MaxUint64
	default:
		n = uint64(t.UnixNano()) ^ 1<<63
	}
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), n)
}

// webhookDueKey is the index key of the delivery stored under whout key k.
func webhookDueKey(next time.Time, k []byte) []byte {
	return append(webhookDueTime(next), k...)
}

// outboxRef is what the index and the prune need of a stored delivery:
// decoding into it skips copying the body.
type outboxRef struct {
	EventID  string    `json:"event_id"`
	Endpoint string    `json:"endpoint"`
	Created  time.Time `json:"created"`
	NextAt   time.Time `json:"next_at"`
}

// deleteWebhookTx removes the delivery stored under whout key k, whose
// value is v, and its index entry.
func deleteWebhookTx(tx *bbolt.Tx, k, v []byte) error {
	var r outboxRef
	if err := json.Unmarshal(v, &r); err != nil {
		return fmt.Errorf("decode webhook delivery %q: %w", k, err)
	}
	if err := tx.Bucket(bWebhookDue).Delete(webhookDueKey(r.NextAt, k)); err != nil {
		return err
	}
	return tx.Bucket(bWebhookOut).Delete(k)
}

// migrateToV9 builds the due index from the outbox, from scratch: an
// entry it finds there was written by a binary that did not keep it.
func migrateToV9(tx *bbolt.Tx) error {
	if err := tx.DeleteBucket(bWebhookDue); err != nil {
		return err
	}
	due, err := tx.CreateBucket(bWebhookDue)
	if err != nil {
		return err
	}
	var keys [][]byte
	err = tx.Bucket(bWebhookOut).ForEach(func(k, v []byte) error {
		var r outboxRef
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("decode webhook delivery %q: %w", k, err)
		}
		keys = append(keys, webhookDueKey(r.NextAt, k))
		return nil
	})
	if err != nil {
		return err
	}
	slices.SortFunc(keys, bytes.Compare) // puts in key order fill pages in turn
	for _, k := range keys {
		if err := due.Put(k, nil); err != nil {
			return err
		}
	}
	return nil
}
