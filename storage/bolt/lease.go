package bolt

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sundial-mdm/sundial/storage"
)

// Leases are kept in memory. bbolt locks its file for one process, so a
// lease here only arbitrates between the Leaders of this process, and
// keeping it on disk would cost a write and two fsyncs at every renewal
// (every 10 s by default) on an otherwise idle server. A restarted server
// takes its leases at once. Files from before keep an unused "leases"
// bucket.
var bLeases = []byte("leases")

func init() { allBuckets = append(allBuckets, bLeases) }

var (
	_ storage.LeaseStore  = (*Store)(nil)
	_ storage.LeaseHolder = (*Store)(nil)
)

type leaseRecord struct {
	holder    string
	expiresAt time.Time // zero: held until released (HoldLease)
}

// takenBy reports whether the lease belongs to someone other than holder
// at now.
func (r leaseRecord) takenBy(holder string, now time.Time) bool {
	return r.holder != holder && (r.expiresAt.IsZero() || r.expiresAt.After(now))
}

// leaseTable holds a Store's leases.
type leaseTable struct {
	mu sync.Mutex
	m  map[string]leaseRecord
}

// AcquireLease implements storage.LeaseStore. A lease is expired once now
// reaches its expiry.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, error) {
	if err := checkLease(name, holder); err != nil {
		return false, err
	}
	if ttl <= 0 {
		return false, fmt.Errorf("acquire lease %s: ttl %v is not positive", name, ttl)
	}
	return s.takeLease(name, holder, now, now.Add(ttl)), nil
}

// HoldLease implements storage.LeaseHolder: the leases live in this
// process, which alone has the file open, so a held lease needs no expiry.
func (s *Store) HoldLease(ctx context.Context, name, holder string, now time.Time) (bool, error) {
	if err := checkLease(name, holder); err != nil {
		return false, err
	}
	return s.takeLease(name, holder, now, time.Time{}), nil
}

// takeLease gives the lease to holder until expires (zero: until
// released) unless someone else holds it at now.
func (s *Store) takeLease(name, holder string, now, expires time.Time) bool {
	s.leases.mu.Lock()
	defer s.leases.mu.Unlock()
	cur, ok := s.leases.m[name]
	if ok && cur.takenBy(holder, now) {
		return false
	}
	if ok && cur.holder == holder && cur.expiresAt.IsZero() {
		return true // held stays held: no renewal shortens it
	}
	if s.leases.m == nil {
		s.leases.m = make(map[string]leaseRecord)
	}
	s.leases.m[name] = leaseRecord{holder: holder, expiresAt: expires}
	return true
}

// ReleaseLease implements storage.LeaseStore.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	s.leases.mu.Lock()
	defer s.leases.mu.Unlock()
	if cur, ok := s.leases.m[name]; ok && cur.holder == holder {
		delete(s.leases.m, name)
	}
	return nil
}

func checkLease(name, holder string) error {
	switch {
	case name == "":
		return fmt.Errorf("acquire lease: empty name")
	case holder == "":
		return fmt.Errorf("acquire lease %s: empty holder", name)
	}
	return nil
}
