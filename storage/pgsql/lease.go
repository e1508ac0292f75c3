package pgsql

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sundial-mdm/sundial/storage"
)

var _ storage.LeaseStore = (*Store)(nil)

// acquireLeaseSQL takes a free or expired lease, or renews the holder's
// own, in one atomic statement: the conflict update only happens (and a
// row only comes back) when the holder already holds it or it has expired
// by the caller's clock ($4). Concurrent callers serialise on the row.
const acquireLeaseSQL = `
INSERT INTO leases AS l (name, holder, expires_at) VALUES ($1, $2, $3)
ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
	WHERE l.holder = EXCLUDED.holder OR l.expires_at <= $4
RETURNING holder`

// AcquireLease implements storage.LeaseStore. The lease row holds an
// expiry computed from the caller's clock, not a session: a replica that
// dies keeps the lease until it expires. A lease is expired once now
// reaches its expiry; see storage.LeaseStore on clock skew.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, error) {
	switch {
	case name == "":
		return false, errors.New("acquire lease: empty name")
	case holder == "":
		return false, fmt.Errorf("acquire lease %s: empty holder", name)
	case ttl <= 0:
		return false, fmt.Errorf("acquire lease %s: ttl %v is not positive", name, ttl)
	}
	var got string
	err := retry(ctx, func() error {
		got = ""
		return s.pool.QueryRow(ctx, acquireLeaseSQL, name, holder, now.Add(ttl), now).Scan(&got)
	})
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	return got == holder, nil
}

// ReleaseLease implements storage.LeaseStore.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	err := retry(ctx, func() error {
		_, err := s.pool.Exec(ctx, `DELETE FROM leases WHERE name = $1 AND holder = $2`, name, holder)
		return err
	})
	if err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}
