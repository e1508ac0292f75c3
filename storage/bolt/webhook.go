package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/internal/webhook"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// whout is the webhook outbox: key <event ID>\x00<endpoint>, value the JSON
// delivery. DueWebhooks finds the due ones through whdue (webhookdue.go).
var bWebhookOut = []byte("whout")

func init() { allBuckets = append(allBuckets, bWebhookOut) }

var _ storage.WebhookOutbox = (*Store)(nil)

func webhookKey(eventID, endpoint string) []byte { return []byte(eventID + "\x00" + endpoint) }

// EnqueueWebhooks implements storage.WebhookOutbox.
func (s *Store) EnqueueWebhooks(ctx context.Context, ds []storage.WebhookDelivery) error {
	vals := make([][]byte, len(ds))
	for i := range ds {
		if err := storage.CheckWebhookDelivery(&ds[i]); err != nil {
			return err
		}
		v, err := json.Marshal(&ds[i])
		if err != nil {
			return err
		}
		vals[i] = v
	}
	return s.db.Update(func(tx *bbolt.Tx) error { return enqueueWebhooksTx(tx, ds, vals) })
}

// enqueueWebhooksTx stores checked, encoded deliveries inside tx, keeping
// any already stored.
func enqueueWebhooksTx(tx *bbolt.Tx, ds []storage.WebhookDelivery, vals [][]byte) error {
	b, due := tx.Bucket(bWebhookOut), tx.Bucket(bWebhookDue)
	// Put in key order: bbolt inserts into an in-memory node, so hashed
	// event IDs in arrival order move half the node on every put (11 s for
	// 70,000 device.at_risk; docs/benchmarks.md). The sort is stable, so a
	// pair queued twice still keeps its first delivery.
	keys := make([][]byte, len(ds))
	order := make([]int, len(ds))
	for i := range ds {
		keys[i], order[i] = webhookKey(ds[i].EventID, ds[i].Endpoint), i
	}
	slices.SortStableFunc(order, func(a, b int) int { return bytes.Compare(keys[a], keys[b]) })
	var dueKeys [][]byte
	for _, i := range order {
		if b.Get(keys[i]) != nil {
			continue
		}
		if err := b.Put(keys[i], vals[i]); err != nil {
			return err
		}
		dueKeys = append(dueKeys, webhookDueKey(ds[i].NextAt, keys[i]))
	}
	// The index in its own key order, for the same reason.
	slices.SortFunc(dueKeys, bytes.Compare)
	for _, k := range dueKeys {
		if err := due.Put(k, nil); err != nil {
			return err
		}
	}
	if len(order) > 0 {
		db := tx.DB()
		tx.OnCommit(func() {
			outboxGen.Add(1)
			if ch, ok := outboxWake.Load(db); ok {
				select {
				case ch.(chan struct{}) <- struct{}{}:
				default:
				}
			}
		})
	}
	return nil
}

// outboxWake holds each open store's WebhookWake channel, by its bbolt
// handle: deliveries are added inside transactions of many store methods,
// which reach the store only through tx.DB().
var outboxWake sync.Map // *bbolt.DB → chan struct{}

// WebhookWake returns a channel that receives after a commit added
// deliveries to the outbox, so that the webhook worker can sleep while the
// outbox is empty (OutboxEmpty).
func (s *Store) WebhookWake() <-chan struct{} {
	ch, _ := outboxWake.LoadOrStore(s.db, make(chan struct{}, 1))
	return ch.(chan struct{})
}

// OutboxEmpty reports whether the last DueWebhooks found the outbox empty
// and nothing was added since.
func (s *Store) OutboxEmpty() bool { return s.outbox.gen.Load() == outboxGen.Load()+1 }

// outboxGen counts the commits that added deliveries to an outbox, in any
// store of this process (enqueueWebhooksTx is the only way in).
var outboxGen atomic.Uint64

// outboxIdle remembers that a store's outbox was found empty, so that the
// worker's polls (every 2 s) open no transaction until a delivery is added.
type outboxIdle struct {
	gen     atomic.Uint64 // outboxGen+1 when the outbox was found empty; 0: unknown
	checked atomic.Int64  // when, in Unix nanoseconds
}

// outboxRecheck bounds how long an empty outbox is taken on trust.
const outboxRecheck = 30 * time.Second

func (o *outboxIdle) empty(gen uint64, now time.Time) bool {
	return o.gen.Load() == gen+1 && now.UnixNano()-o.checked.Load() < int64(outboxRecheck)
}

// found records that the outbox was empty as of gen, read before the
// transaction that found it so: a commit after that read changes outboxGen.
func (o *outboxIdle) found(gen uint64, now time.Time) {
	o.checked.Store(now.UnixNano())
	o.gen.Store(gen + 1)
}

// enqueueCommitWebhooks writes the events of scheduler commits to the outbox
// inside the transaction that commits them, so an event exists if and only
// if its phase change does. With no endpoint it costs one cursor seek.
func enqueueCommitWebhooks(tx *bbolt.Tx, commits []scheduler.Commit, now time.Time) error {
	if k, _ := tx.Bucket(bWebhookEP).Cursor().First(); k == nil || !webhook.HasEvents(commits) {
		return nil
	}
	var events []webhook.Event
	for i := range commits {
		events = append(events, webhook.CommitEvents(&commits[i], now)...)
	}
	return enqueueEventsTx(tx, events)
}

// enqueueEventsTx fans events out to the subscribed endpoints inside tx.
func enqueueEventsTx(tx *bbolt.Tx, events []webhook.Event) error {
	if k, _ := tx.Bucket(bWebhookEP).Cursor().First(); k == nil || len(events) == 0 {
		return nil
	}
	eps, err := webhookEndpoints(tx)
	if err != nil {
		return err
	}
	ds, err := webhook.Deliveries(events, eps)
	if err != nil {
		return err
	}
	vals := make([][]byte, len(ds))
	for i := range ds {
		if err := storage.CheckWebhookDelivery(&ds[i]); err != nil {
			return err
		}
		if vals[i], err = json.Marshal(&ds[i]); err != nil {
			return err
		}
	}
	return enqueueWebhooksTx(tx, ds, vals)
}

// webhookRefs decodes the whole outbox without the bodies, as the prune
// needs it.
func webhookRefs(tx *bbolt.Tx) ([]storage.WebhookDelivery, error) {
	var out []storage.WebhookDelivery
	err := tx.Bucket(bWebhookOut).ForEach(func(k, v []byte) error {
		var r outboxRef
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("decode webhook delivery %q: %w", k, err)
		}
		out = append(out, storage.WebhookDelivery{EventID: r.EventID, Endpoint: r.Endpoint, Created: r.Created, NextAt: r.NextAt})
		return nil
	})
	return out, err
}

// DueWebhooks implements storage.WebhookOutbox. It reads the due index up
// to now and decodes only the deliveries it returns.
func (s *Store) DueWebhooks(ctx context.Context, now time.Time, limit int) ([]storage.WebhookDelivery, error) {
	gen := outboxGen.Load()
	if s.outbox.empty(gen, now) {
		return nil, nil
	}
	var (
		due   []storage.WebhookDelivery
		empty bool
	)
	err := s.db.View(func(tx *bbolt.Tx) error {
		out := tx.Bucket(bWebhookOut)
		if k, _ := out.Cursor().First(); k == nil {
			empty = true
			return nil
		}
		end := webhookDueTime(now)
		c := tx.Bucket(bWebhookDue).Cursor()
		for k, _ := c.First(); k != nil && len(k) > 8 && bytes.Compare(k[:8], end) <= 0; k, _ = c.Next() {
			v := out.Get(k[8:])
			if v == nil {
				// An entry without its delivery (a bug or a damaged file)
				// must not stop the deliveries behind it.
				continue
			}
			var d storage.WebhookDelivery
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("decode webhook delivery %q: %w", k[8:], err)
			}
			// Only times webhookDueTime clamps (before 1678, after 2262) share
			// a key with a later one.
			if d.NextAt.After(now) {
				continue
			}
			due = append(due, d)
			if limit > 0 && len(due) >= limit {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if empty {
		s.outbox.found(gen, now)
	}
	return due, nil
}

// AckWebhook implements storage.WebhookOutbox.
func (s *Store) AckWebhook(ctx context.Context, eventID, endpoint string) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		k := webhookKey(eventID, endpoint)
		v := tx.Bucket(bWebhookOut).Get(k)
		if v == nil {
			return nil
		}
		return deleteWebhookTx(tx, k, v)
	})
}

// RetryWebhook implements storage.WebhookOutbox.
func (s *Store) RetryWebhook(ctx context.Context, eventID, endpoint string, attempts int, next time.Time, lastErr string) error {
	if len(lastErr) > storage.MaxWebhookError {
		lastErr = lastErr[:storage.MaxWebhookError]
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bWebhookOut)
		k := webhookKey(eventID, endpoint)
		v := b.Get(k)
		if v == nil {
			return storage.ErrNotFound
		}
		var d storage.WebhookDelivery
		if err := json.Unmarshal(v, &d); err != nil {
			return err
		}
		was := d.NextAt
		d.Attempts, d.NextAt, d.LastErr = attempts, next, lastErr
		nv, err := json.Marshal(&d)
		if err != nil {
			return err
		}
		if err := b.Put(k, nv); err != nil {
			return err
		}
		// Move the index entry to the new due time.
		idx := tx.Bucket(bWebhookDue)
		if err := idx.Delete(webhookDueKey(was, k)); err != nil {
			return err
		}
		return idx.Put(webhookDueKey(next, k), nil)
	})
}

// PruneWebhooks implements storage.WebhookOutbox.
func (s *Store) PruneWebhooks(ctx context.Context, olderThan time.Time, maxPerEndpoint int) (int, error) {
	// Most passes drop nothing: look in a read transaction first, so that
	// they write (and fsync) nothing.
	var none bool
	err := s.db.View(func(tx *bbolt.Tx) error {
		all, err := webhookRefs(tx)
		none = err == nil && len(storage.WebhooksToPrune(all, olderThan, maxPerEndpoint)) == 0
		return err
	})
	if err != nil || none {
		return 0, err
	}
	n := 0
	err = s.db.Update(func(tx *bbolt.Tx) error {
		all, err := webhookRefs(tx)
		if err != nil {
			return err
		}
		drop := storage.WebhooksToPrune(all, olderThan, maxPerEndpoint)
		b, idx := tx.Bucket(bWebhookOut), tx.Bucket(bWebhookDue)
		for _, d := range drop {
			k := webhookKey(d.EventID, d.Endpoint)
			if err := idx.Delete(webhookDueKey(d.NextAt, k)); err != nil {
				return err
			}
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(drop)
		return nil
	})
	return n, err
}

// whep holds the webhook endpoints: key the ID, value the JSON endpoint.
var bWebhookEP = []byte("whep")

func init() { allBuckets = append(allBuckets, bWebhookEP) }

var _ storage.WebhookEndpointStore = (*Store)(nil)

// PutWebhookEndpoint implements storage.WebhookEndpointStore.
func (s *Store) PutWebhookEndpoint(ctx context.Context, e storage.WebhookEndpoint) error {
	if err := storage.CheckWebhookEndpoint(&e); err != nil {
		return err
	}
	v, err := json.Marshal(&e)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bWebhookEP)
		if b.Get([]byte(e.ID)) == nil && b.Stats().KeyN >= storage.MaxWebhookEndpoints {
			return storage.ErrWebhookLimit
		}
		return b.Put([]byte(e.ID), v)
	})
}

// webhookEndpoints decodes every endpoint in ID order.
func webhookEndpoints(tx *bbolt.Tx) ([]storage.WebhookEndpoint, error) {
	var out []storage.WebhookEndpoint
	err := tx.Bucket(bWebhookEP).ForEach(func(k, v []byte) error {
		var e storage.WebhookEndpoint
		if err := json.Unmarshal(v, &e); err != nil {
			return err
		}
		out = append(out, e)
		return nil
	})
	return out, err
}

// WebhookEndpoints implements storage.WebhookEndpointStore.
func (s *Store) WebhookEndpoints(ctx context.Context) ([]storage.WebhookEndpoint, error) {
	var out []storage.WebhookEndpoint
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		out, err = webhookEndpoints(tx)
		return err
	})
	return out, err
}

// DeleteWebhookEndpoint implements storage.WebhookEndpointStore.
func (s *Store) DeleteWebhookEndpoint(ctx context.Context, id string) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bWebhookEP)
		if b.Get([]byte(id)) == nil {
			return storage.ErrNotFound
		}
		if err := b.Delete([]byte(id)); err != nil {
			return err
		}
		all, err := webhookRefs(tx)
		if err != nil {
			return err
		}
		out, idx := tx.Bucket(bWebhookOut), tx.Bucket(bWebhookDue)
		for _, d := range all {
			if d.Endpoint == id {
				k := webhookKey(d.EventID, id)
				if err := idx.Delete(webhookDueKey(d.NextAt, k)); err != nil {
					return err
				}
				if err := out.Delete(k); err != nil {
					return err
				}
			}
		}
		return nil
	})
}
