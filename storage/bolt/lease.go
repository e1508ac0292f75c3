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

var _ storage.LeaseStore = (*Store)(nil)

type leaseRecord struct {
	holder    string
	expiresAt time.Time
}

// leaseTable holds a Store's leases.
type leaseTable struct {
	mu sync.Mutex
	m  map[string]leaseRecord
}

// AcquireLease implements storage.LeaseStore. A lease is expired once now
// reaches its expiry.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, error) {
	if err := checkLease(name, holder, ttl); err != nil {
		return false, err
	}
	s.leases.mu.Lock()
	defer s.leases.mu.Unlock()
	if cur, ok := s.leases.m[name]; ok && cur.holder != holder && cur.expiresAt.After(now) {
		return false, nil
	}
	if s.leases.m == nil {
		s.leases.m = make(map[string]leaseRecord)
	}
	s.leases.m[name] = leaseRecord{holder: holder, expiresAt: now.Add(ttl)}
	return true, nil
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
