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

// EnqueueWebhooksOnce implements storage.WebhookOnceStore.
func (s *Store) EnqueueWebhooksOnce(ctx context.Context, events []storage.WebhookOnceEvent) (int, error) {
	return s.putAnnounced(events, nil)
}

func encodeDeliveries(ds []storage.WebhookDelivery) ([][]byte, error) {
	vals := make([][]byte, len(ds))
	for i := range ds {
		v, err := json.Marshal(&ds[i])
		if err != nil {
			return nil, err
		}
		vals[i] = v
	}
	return vals, nil
}

// enqueueOnceTx records eventID in the ledger and stores its checked,
// encoded deliveries inside tx, unless the ledger already has it.
func enqueueOnceTx(tx *bbolt.Tx, eventID string, keepUntil time.Time, ds []storage.WebhookDelivery, vals [][]byte) (bool, error) {
	b := tx.Bucket(bWebhookOnce)
	if b.Get([]byte(eventID)) != nil {
		return false, nil
	}
	if err := b.Put([]byte(eventID), binary.BigEndian.AppendUint64(nil, uint64(keepUntil.UnixNano()))); err != nil {
		return false, err
	}
	return true, enqueueWebhooksTx(tx, ds, vals)
}

// putAnnounced runs put (if any) and queues events once, in one
// transaction, and returns how many events it queued.
func (s *Store) putAnnounced(events []storage.WebhookOnceEvent, put func(tx *bbolt.Tx) error) (int, error) {
	if err := storage.CheckWebhookOnceEvents(events); err != nil {
		return 0, err
	}
	if put == nil && len(events) == 0 {
		return 0, nil
	}
	vals := make([][][]byte, len(events))
	for i := range events {
		v, err := encodeDeliveries(events[i].Deliveries)
		if err != nil {
			return 0, err
		}
		vals[i] = v
	}
	n := 0
	err := s.db.Update(func(tx *bbolt.Tx) error {
		n = 0
		if put != nil {
			if err := put(tx); err != nil {
				return err
			}
		}
		for i := range events {
			first, err := enqueueOnceTx(tx, events[i].ID, events[i].KeepUntil, events[i].Deliveries, vals[i])
			if err != nil {
				return err
			}
			if first {
				n++
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

var _ storage.CatalogAnnounceStore = (*Store)(nil)

// PutCatalogFeedAnnounced implements storage.CatalogAnnounceStore.
func (s *Store) PutCatalogFeedAnnounced(ctx context.Context, kind string, body []byte, now time.Time, events []storage.WebhookOnceEvent) error {
	_, err := s.putAnnounced(events, func(tx *bbolt.Tx) error { return tx.Bucket(bCatFeed).Put([]byte(kind), body) })
	return err
}

// PutManualReleaseAnnounced implements storage.CatalogAnnounceStore.
func (s *Store) PutManualReleaseAnnounced(ctx context.Context, version string, rel []byte, events []storage.WebhookOnceEvent) error {
	_, err := s.putAnnounced(events, func(tx *bbolt.Tx) error { return tx.Bucket(bCatMan).Put([]byte(version), rel) })
	return err
}

// PruneWebhookOnce implements storage.WebhookOnceStore.
func (s *Store) PruneWebhookOnce(ctx context.Context, now time.Time) (int, error) {
	expired := func(v []byte) bool { return len(v) != 8 || int64(binary.BigEndian.Uint64(v)) < now.UnixNano() }
	// Most checks find nothing to prune: look in a read transaction first,
	// so that only a prune pays for a commit and its fsyncs.
	found := false
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bWebhookOnce).Cursor()
		for k, v := c.First(); k != nil && !found; k, v = c.Next() {
			found = expired(v)
		}
		return nil
	})
	if err != nil || !found {
		return 0, err
	}
	n := 0
	err = s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bWebhookOnce)
		var drop [][]byte
		err := b.ForEach(func(k, v []byte) error {
			if expired(v) {
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
