package bolt

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/storage"
)

// Lease bucket:
//
//	leases   <name>   JSON leaseRecord
//
// A bbolt file serves one process, so a lease here only matters between
// Leaders of one process; it is implemented for parity with pgsql.
var bLeases = []byte("leases")

func init() { allBuckets = append(allBuckets, bLeases) }

var _ storage.LeaseStore = (*Store)(nil)

type leaseRecord struct {
	Holder    string    `json:"holder"`
	ExpiresAt time.Time `json:"expires_at"`
}

// AcquireLease implements storage.LeaseStore. A lease is expired once now
// reaches its expiry.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, error) {
	if err := checkLease(name, holder, ttl); err != nil {
		return false, err
	}
	var ok bool
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bLeases)
		if v := b.Get([]byte(name)); v != nil {
			var cur leaseRecord
			if err := json.Unmarshal(v, &cur); err != nil {
				return fmt.Errorf("decode lease %s: %w", name, err)
			}
			if cur.Holder != holder && cur.ExpiresAt.After(now) {
				return nil
			}
		}
		v, err := json.Marshal(leaseRecord{Holder: holder, ExpiresAt: now.Add(ttl)})
		if err != nil {
			return err
		}
		ok = true
		return b.Put([]byte(name), v)
	})
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	return ok, nil
}

// ReleaseLease implements storage.LeaseStore.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bLeases)
		v := b.Get([]byte(name))
		if v == nil {
			return nil
		}
		var cur leaseRecord
		if err := json.Unmarshal(v, &cur); err != nil {
			return fmt.Errorf("decode lease %s: %w", name, err)
		}
		if cur.Holder != holder {
			return nil
		}
		return b.Delete([]byte(name))
	})
	if err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}

func checkLease(name, holder string, ttl time.Duration) error {
	switch {
	case name == "":
		return fmt.Errorf("acquire lease: empty name")
	case holder == "":
		return fmt.Errorf("acquire lease %s: empty holder", name)
	case ttl <= 0:
		return fmt.Errorf("acquire lease %s: ttl %v is not positive", name, ttl)
	}
	return nil
}
