package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/storage"
)

// Automated Device Enrollment buckets:
//
//	ade_devices  <serial>  JSON storage.ADEDevice
//	ade_cursors  <server>  the DEP sync cursor
var (
	bADEDevices = []byte("ade_devices")
	bADECursors = []byte("ade_cursors")
)

func init() { allBuckets = append(allBuckets, bADEDevices, bADECursors) }

var (
	_ storage.ADEStore   = (*Store)(nil)
	_ storage.ADEUpdater = (*Store)(nil)
)

func getADE(b *bbolt.Bucket, serial string) (*storage.ADEDevice, error) {
	v := b.Get([]byte(serial))
	if v == nil {
		return nil, fmt.Errorf("abm device %s: %w", serial, storage.ErrNotFound)
	}
	d := new(storage.ADEDevice)
	if err := json.Unmarshal(v, d); err != nil {
		return nil, fmt.Errorf("decode abm device %s: %w", serial, err)
	}
	return d, nil
}

func putADE(b *bbolt.Bucket, d *storage.ADEDevice) error {
	if err := storage.CheckADEDevice(d); err != nil {
		return err
	}
	v, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return b.Put([]byte(d.Serial), v)
}

// ApplyADEPage implements storage.ADEStore: one transaction for the page's
// devices and its cursor.
func (s *Store) ApplyADEPage(ctx context.Context, p storage.ADEPage, now time.Time) error {
	if p.Server == "" || len(p.Cursor) > storage.MaxADECursor {
		return fmt.Errorf("apply abm page: missing server or overlong cursor")
	}
	for i := range p.Upsert {
		if err := storage.CheckADEDevice(&p.Upsert[i]); err != nil {
			return fmt.Errorf("apply abm page: %w", err)
		}
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bADEDevices)
		for _, in := range p.Upsert {
			d := in
			if old, err := getADE(b, in.Serial); err == nil {
				d.Group, d.AssignResult, d.AssignedAt = old.Group, old.AssignResult, old.AssignedAt
				d.EnrollmentID, d.EnrolledAt = old.EnrollmentID, old.EnrolledAt
			}
			d.Server, d.UpdatedAt = p.Server, now
			if err := putADE(b, &d); err != nil {
				return err
			}
		}
		for _, serial := range p.Deleted {
			// Only this server's record: a serial moved to another ABM
			// server of ours must not vanish with the old one's delete.
			if old, err := getADE(b, serial); err == nil && old.Server == p.Server {
				if err := b.Delete([]byte(serial)); err != nil {
					return err
				}
			}
		}
		return tx.Bucket(bADECursors).Put([]byte(p.Server), []byte(p.Cursor))
	})
}

// ADECursor implements storage.ADEStore.
func (s *Store) ADECursor(ctx context.Context, server string) (string, error) {
	var c string
	err := s.db.View(func(tx *bbolt.Tx) error {
		c = string(tx.Bucket(bADECursors).Get([]byte(server)))
		return nil
	})
	return c, err
}

// ADEDevice implements storage.ADEStore.
func (s *Store) ADEDevice(ctx context.Context, serial string) (*storage.ADEDevice, error) {
	var d *storage.ADEDevice
	err := s.db.View(func(tx *bbolt.Tx) (err error) {
		d, err = getADE(tx.Bucket(bADEDevices), serial)
		return err
	})
	return d, err
}

// ADEDevices implements storage.ADEStore.
func (s *Store) ADEDevices(ctx context.Context, after string, limit int) ([]storage.ADEDevice, error) {
	var out []storage.ADEDevice
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bADEDevices).Cursor()
		k, v := c.First()
		if after != "" {
			k, v = c.Seek([]byte(after))
			if k != nil && bytes.Equal(k, []byte(after)) {
				k, v = c.Next()
			}
		}
		for ; k != nil && (limit <= 0 || len(out) < limit); k, v = c.Next() {
			var d storage.ADEDevice
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("decode abm device %s: %w", k, err)
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

// SetADEAssignResults implements storage.ADEUpdater.
func (s *Store) SetADEAssignResults(ctx context.Context, results map[string]string, now time.Time) error {
	return s.updateADE(func(b *bbolt.Bucket) error {
		for serial, res := range results {
			d, err := getADE(b, serial)
			if err != nil {
				continue
			}
			d.AssignResult, d.AssignedAt, d.UpdatedAt = res, now, now
			if err := putADE(b, d); err != nil {
				return err
			}
		}
		return nil
	})
}

// SetADEGroup implements storage.ADEUpdater.
func (s *Store) SetADEGroup(ctx context.Context, serial, group string, now time.Time) error {
	return s.updateADE(func(b *bbolt.Bucket) error {
		d, err := getADE(b, serial)
		if err != nil {
			return err
		}
		d.Group, d.UpdatedAt = group, now
		return putADE(b, d)
	})
}

// MarkADEEnrolled implements storage.ADEUpdater.
func (s *Store) MarkADEEnrolled(ctx context.Context, serial, udid string, now time.Time) error {
	return s.updateADE(func(b *bbolt.Bucket) error {
		d, err := getADE(b, serial)
		if err != nil {
			return err
		}
		d.EnrollmentID, d.EnrolledAt, d.UpdatedAt = udid, now, now
		return putADE(b, d)
	})
}

func (s *Store) updateADE(f func(b *bbolt.Bucket) error) error {
	return s.db.Update(func(tx *bbolt.Tx) error { return f(tx.Bucket(bADEDevices)) })
}

// ABM MDM servers:
//
//	dep_servers  <name>  JSON storage.DEPServer
var bDEPServers = []byte("dep_servers")

func init() { allBuckets = append(allBuckets, bDEPServers) }

var _ storage.DEPServerStore = (*Store)(nil)

// PutDEPServer implements storage.DEPServerStore.
func (s *Store) PutDEPServer(ctx context.Context, srv *storage.DEPServer) error {
	v, err := storage.EncodeDEPServer(srv)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bDEPServers).Put([]byte(srv.Name), v) })
}

// DEPServer implements storage.DEPServerStore.
func (s *Store) DEPServer(ctx context.Context, name string) (*storage.DEPServer, error) {
	srv := new(storage.DEPServer)
	err := s.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bDEPServers).Get([]byte(name))
		if v == nil {
			return fmt.Errorf("abm server %s: %w", name, storage.ErrNotFound)
		}
		return json.Unmarshal(v, srv)
	})
	if err != nil {
		return nil, err
	}
	return srv, nil
}

// DEPServers implements storage.DEPServerStore.
func (s *Store) DEPServers(ctx context.Context) ([]storage.DEPServer, error) {
	var out []storage.DEPServer
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bDEPServers).ForEach(func(_, v []byte) error {
			var srv storage.DEPServer
			if err := json.Unmarshal(v, &srv); err != nil {
				return err
			}
			out = append(out, srv)
			return nil
		})
	})
	return out, err
}
