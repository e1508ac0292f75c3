package bolt

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/storage"
)

// whonce is the ledger of events emitted once: key the event ID, value
// when it may be forgotten (8-byte big-endian Unix nanoseconds). It holds
// one entry per release learned and per exception expiry, so the prune
// scan walks it whole.
var bWebhookOnce = []byte("whonce")

func init() { allBuckets = append(allBuckets, bWebhookOnce) }

var _ storage.WebhookOnceStore = (*Store)(nil)

// EnqueueWebhookOnce implements storage.WebhookOnceStore.
func (s *Store) EnqueueWebhookOnce(ctx context.Context, eventID string, keepUntil time.Time, ds []storage.WebhookDelivery) (bool, error) {
	if err := storage.CheckWebhookOnce(eventID, ds); err != nil {
		return false, err
	}
	vals := make([][]byte, len(ds))
	for i := range ds {
		v, err := json.Marshal(&ds[i])
		if err != nil {
			return false, err
		}
		vals[i] = v
	}
	first := false
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bWebhookOnce)
		if b.Get([]byte(eventID)) != nil {
			return nil
		}
		first = true
		if err := b.Put([]byte(eventID), binary.BigEndian.AppendUint64(nil, uint64(keepUntil.UnixNano()))); err != nil {
			return err
		}
		return enqueueWebhooksTx(tx, ds, vals)
	})
	if err != nil {
		return false, err
	}
	return first, nil
}

// PruneWebhookOnce implements storage.WebhookOnceStore.
func (s *Store) PruneWebhookOnce(ctx context.Context, now time.Time) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bWebhookOnce)
		var drop [][]byte
		err := b.ForEach(func(k, v []byte) error {
			if len(v) != 8 || int64(binary.BigEndian.Uint64(v)) < now.UnixNano() {
				drop = append(drop, k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range drop {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(drop)
		return nil
	})
	return n, err
}
