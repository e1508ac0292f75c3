package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/storage"
)

func getDevice(tx *bbolt.Tx, id string) (*mdm.Device, error) {
	v := tx.Bucket(bDevices).Get([]byte(id))
	if v == nil {
		return nil, fmt.Errorf("device %s: %w", id, storage.ErrNotFound)
	}
	d := new(mdm.Device)
	if err := json.Unmarshal(v, d); err != nil {
		return nil, fmt.Errorf("decode device %s: %w", id, err)
	}
	return d, nil
}

// putDevice writes d. was is the invKey of the record it replaces (nil for
// a new device), taken before d was changed, so that the inventory index
// follows without a second read of the old record.
func putDevice(tx *bbolt.Tx, d *mdm.Device, was []byte) error {
	lastSeen, lastPush := d.LastSeen, d.LastPush
	d.LastSeen, d.LastPush = time.Time{}, mdm.PushState{} // kept in their own buckets
	v, err := json.Marshal(d)
	d.LastSeen, d.LastPush = lastSeen, lastPush
	if err != nil {
		return fmt.Errorf("encode device %s: %w", d.ID, err)
	}
	if err := indexInventory(tx, d.ID, was, invKey(d)); err != nil {
		return fmt.Errorf("index device %s: %w", d.ID, err)
	}
	return tx.Bucket(bDevices).Put([]byte(d.ID), v)
}

// parentID is the device enrollment of a user channel ID ("<dev>:<user>").
func parentID(id string) string {
	if i := strings.IndexByte(id, ':'); i >= 0 {
		return id[:i]
	}
	return id
}

// Authenticate implements storage.CheckinStore.
func (s *Store) Authenticate(ctx context.Context, id string, msg *mdm.CheckinMessage, certHash string, now time.Time) error {
	return s.db.Batch(func(tx *bbolt.Tx) error { return s.authenticate(tx, id, msg, certHash, now) })
}

func (s *Store) authenticate(tx *bbolt.Tx, id string, msg *mdm.CheckinMessage, certHash string, now time.Time) error {
	certs := tx.Bucket(bCerts)
	if owner := certs.Get([]byte(certHash)); owner != nil && string(owner) != id {
		return storage.ErrCertInUse
	}
	d, err := getDevice(tx, id)
	var was []byte
	if err == nil {
		was = invKey(d)
	} else {
		if !errors.Is(err, storage.ErrNotFound) {
			// An undecodable record is replaced: its index entry, if
			// any, is found by a scan of the index.
			was = scanInventoryKey(tx, id)
		}
		d = &mdm.Device{ID: id}
		if tx.Bucket(bMSState).Get([]byte(id)) == nil {
			// The scheduler's sweep finds it here until its first
			// evaluation.
			if err := tx.Bucket(bMSNew).Put([]byte(id), nil); err != nil {
				return err
			}
		}
	}
	if d.CertHash != "" && d.CertHash != certHash {
		if err := certs.Delete([]byte(d.CertHash)); err != nil {
			return err
		}
	}
	if err := certs.Put([]byte(certHash), []byte(id)); err != nil {
		return err
	}
	d.UDID = msg.UDID
	if d.UDID == "" {
		d.UDID = msg.EnrollmentID
	}
	d.Topic = msg.Topic
	d.SerialNumber, d.ProductName = msg.SerialNumber, msg.ProductName
	d.Model, d.ModelName, d.DeviceName = msg.Model, msg.ModelName, msg.DeviceName
	d.OSVersion, d.BuildVersion = msg.OSVersion, msg.BuildVersion
	d.Enabled = false
	d.CertHash = certHash
	d.AuthenticatedAt = now
	d.EnrolledAt = time.Time{}
	d.PushToken, d.PushMagic, d.TokenInvalid = nil, "", false
	d.InventoryRequestedAt = time.Time{}
	// A re-enrollment starts without the old enrollment's secrets: the
	// escrowed bootstrap token is dropped (the Mac escrows it again)
	// and the agent secret is cleared, so the next TokenUpdate
	// provisions a fresh one.
	d.BootstrapToken, d.BootstrapAt = nil, time.Time{}
	if err := clearAgentSecret(tx, id); err != nil {
		return err
	}
	if err := s.clearQueue(tx, id, now); err != nil {
		return err
	}
	return putDevice(tx, d, was)
}

// TokenUpdate implements storage.CheckinStore.
func (s *Store) TokenUpdate(ctx context.Context, id string, msg *mdm.CheckinMessage, onFirst *mdm.Command, now time.Time) (bool, error) {
	var first bool
	err := s.db.Batch(func(tx *bbolt.Tx) error {
		first = false
		d, err := getDevice(tx, id)
		if err != nil {
			pid := parentID(id)
			if pid == id {
				return err
			}
			if _, perr := getDevice(tx, pid); perr != nil {
				return perr
			}
			d = &mdm.Device{ID: id, ParentID: pid, UDID: msg.UDID, Topic: msg.Topic, AuthenticatedAt: now}
		}
		was := invKey(d)
		if !d.Enabled && d.EnrolledAt.IsZero() {
			first = true
			d.EnrolledAt = now
		}
		d.Enabled = true
		d.CheckedOutAt = time.Time{}
		d.PushToken = clone(msg.Token)
		d.PushMagic = msg.PushMagic
		d.TokenInvalid = false
		if msg.Topic != "" {
			d.Topic = msg.Topic
		}
		if first && onFirst != nil {
			if onFirst.RequestType == "DeviceInformation" {
				d.InventoryRequestedAt = now
			}
			if err := putDevice(tx, d, was); err != nil {
				return err
			}
			return s.enqueue(tx, []string{id}, onFirst, now)
		}
		return putDevice(tx, d, was)
	})
	return first, err
}

// CheckOut implements storage.CheckinStore.
func (s *Store) CheckOut(ctx context.Context, id string, now time.Time) error {
	return s.db.Batch(func(tx *bbolt.Tx) error {
		ids := []string{id}
		if parentID(id) == id {
			c := tx.Bucket(bDevices).Cursor()
			p := []byte(id + ":")
			for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
				ids = append(ids, string(k))
			}
		}
		for _, id := range ids {
			d, err := getDevice(tx, id)
			if err != nil {
				return err
			}
			was := invKey(d)
			d.Enabled = false
			d.CheckedOutAt = now
			if err := putDevice(tx, d, was); err != nil {
				return err
			}
		}
		return nil
	})
}

// SetBootstrapToken implements storage.CheckinStore.
func (s *Store) SetBootstrapToken(ctx context.Context, id string, sealed []byte, now time.Time) error {
	return s.db.Batch(func(tx *bbolt.Tx) error {
		d, err := getDevice(tx, id)
		if err != nil {
			return err
		}
		was := invKey(d)
		d.BootstrapToken = clone(sealed)
		d.BootstrapAt = now
		return putDevice(tx, d, was)
	})
}

// CertBound implements storage.CheckinStore.
func (s *Store) CertBound(ctx context.Context, id, certHash string) (bool, error) {
	var ok bool
	err := s.db.View(func(tx *bbolt.Tx) error {
		owner := tx.Bucket(bCerts).Get([]byte(certHash))
		ok = owner != nil && string(owner) == parentID(id)
		return nil
	})
	return ok, err
}

// Device implements storage.DeviceStore.
func (s *Store) Device(ctx context.Context, id string) (*mdm.Device, error) {
	var d *mdm.Device
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		d, err = getDevice(tx, id)
		if err != nil {
			return err
		}
		d.LastSeen = fromNanos(tx.Bucket(bSeen).Get([]byte(id)))
		d.LastPush, _, err = getPushState(tx, id)
		return err
	})
	return d, err
}

// Devices implements storage.DeviceStore.
func (s *Store) Devices(ctx context.Context, after string, limit int) ([]*mdm.Device, error) {
	var out []*mdm.Device
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bDevices).Cursor()
		seen := tx.Bucket(bSeen)
		var k, v []byte
		if after == "" {
			k, v = c.First()
		} else {
			k, v = c.Seek([]byte(after))
			if k != nil && string(k) == after {
				k, v = c.Next()
			}
		}
		for ; k != nil; k, v = c.Next() {
			if limit > 0 && len(out) >= limit {
				break
			}
			d := new(mdm.Device)
			if err := json.Unmarshal(v, d); err != nil {
				return fmt.Errorf("decode device %s: %w", k, err)
			}
			d.LastSeen = fromNanos(seen.Get(k))
			var err error
			if d.LastPush, _, err = getPushState(tx, string(k)); err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

// UpdateInventory implements storage.DeviceStore. An answer that reports
// only some keys is merged into the stored inventory (mdm.Inventory.Merge).
func (s *Store) UpdateInventory(ctx context.Context, id string, inv *mdm.Inventory, now time.Time) error {
	return s.db.Batch(func(tx *bbolt.Tx) error { return mergeInventory(tx, id, inv, now) })
}

// mergeInventory merges inv into id's device record (mdm.Inventory.Merge),
// takes the OS version and serial number from it, and re-indexes the
// record.
func mergeInventory(tx *bbolt.Tx, id string, inv *mdm.Inventory, now time.Time) error {
	d, err := getDevice(tx, id)
	if err != nil {
		return err
	}
	return applyInventory(tx, d, inv, now)
}

// applyInventory is mergeInventory on the record d, read in tx.
func applyInventory(tx *bbolt.Tx, d *mdm.Device, inv *mdm.Inventory, now time.Time) error {
	was := invKey(d)
	d.Inventory = inv.Merge(d.Inventory)
	d.InventoryAt = now
	if d.Inventory.OSVersion != "" {
		d.OSVersion, d.BuildVersion = d.Inventory.OSVersion, d.Inventory.BuildVersion
	}
	if d.Inventory.SerialNumber != "" {
		d.SerialNumber = d.Inventory.SerialNumber
	}
	return putDevice(tx, d, was)
}

// TouchLastSeen implements storage.DeviceStore. Unknown IDs are skipped.
func (s *Store) TouchLastSeen(ctx context.Context, seen map[string]time.Time) error {
	if len(seen) == 0 {
		return nil
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		devs, b := tx.Bucket(bDevices), tx.Bucket(bSeen)
		for id, t := range seen {
			if devs.Get([]byte(id)) == nil {
				continue
			}
			if old := fromNanos(b.Get([]byte(id))); old.After(t) {
				continue
			}
			if err := b.Put([]byte(id), unixNanos(t)); err != nil {
				return err
			}
			if err := resetPushSchedule(tx, id, t); err != nil {
				return err
			}
		}
		return nil
	})
}

// InventoryDue implements storage.InventoryScheduler. It reads the
// inventory index (invdue.go), longest waiting first.
func (s *Store) InventoryDue(ctx context.Context, before time.Time, limit int) ([]string, error) {
	var ids []string
	err := s.db.View(func(tx *bbolt.Tx) error {
		ids = inventoryDue(tx, before, limit)
		return nil
	})
	return ids, err
}

// MarkInventoryRequested implements storage.InventoryScheduler.
func (s *Store) MarkInventoryRequested(ctx context.Context, ids []string, now time.Time) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		for _, id := range ids {
			d, err := getDevice(tx, id)
			if err != nil {
				return err
			}
			was := invKey(d)
			d.InventoryRequestedAt = now
			if err := putDevice(tx, d, was); err != nil {
				return err
			}
		}
		return nil
	})
}
