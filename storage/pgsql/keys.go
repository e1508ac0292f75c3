package pgsql

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sundial-mdm/sundial/storage"
)

// PutAPIKey implements storage.APIKeyStore. A key whose ID or hash is
// already stored gives ErrExists.
func (s *Store) PutAPIKey(ctx context.Context, k storage.APIKey) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO api_keys (id, name, hash, created_at, revoked_at, role) VALUES ($1, $2, $3, $4, $5, $6)`,
		k.ID, k.Name, k.Hash, ts(k.CreatedAt), ts(k.RevokedAt), k.Role)
	if uniqueViolation(err, "") {
		return fmt.Errorf("api key %s: %w", k.ID, storage.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("put api key %s: %w", k.ID, err)
	}
	return nil
}

const apiKeyColumns = `id, name, hash, created_at, revoked_at, role`

func scanAPIKey(row pgx.Row) (storage.APIKey, error) {
	var k storage.APIKey
	err := row.Scan(&k.ID, &k.Name, &k.Hash, scanTime(&k.CreatedAt), scanTime(&k.RevokedAt), &k.Role)
	return k, err
}

// APIKeyByHash implements storage.APIKeyStore.
func (s *Store) APIKeyByHash(ctx context.Context, hash string) (*storage.APIKey, error) {
	k, err := scanAPIKey(s.pool.QueryRow(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE hash = $1`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("api key: %w", storage.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read api key: %w", err)
	}
	return &k, nil
}

// APIKeys implements storage.APIKeyStore. Keys are ordered by ID.
func (s *Store) APIKeys(ctx context.Context) ([]storage.APIKey, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+apiKeyColumns+` FROM api_keys ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	keys, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.APIKey, error) { return scanAPIKey(row) })
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	return keys, nil
}

// RevokeAPIKey implements storage.APIKeyStore. Revoking a revoked key keeps
// the first revocation time.
func (s *Store) RevokeAPIKey(ctx context.Context, id string, now time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE api_keys SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1`, id, ts(now))
	if err != nil {
		return fmt.Errorf("revoke api key %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("api key %s: %w", id, storage.ErrNotFound)
	}
	return nil
}

// PutChallenge implements storage.ChallengeStore. Putting a key again
// replaces its expiry.
func (s *Store) PutChallenge(ctx context.Context, key string, expires time.Time) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO challenges (key, expires_at) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at`, key, expires)
	if err != nil {
		return fmt.Errorf("put challenge: %w", err)
	}
	return nil
}

// TakeChallenge implements storage.ChallengeStore. The challenge is deleted
// whether or not it was still valid, and so are the other expired ones.
func (s *Store) TakeChallenge(ctx context.Context, key string, now time.Time) (bool, error) {
	var ok bool
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		ok = false
		var expires time.Time
		err := tx.QueryRow(ctx, `DELETE FROM challenges WHERE key = $1 RETURNING expires_at`, key).Scan(&expires)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		ok = err == nil && expires.After(now)
		_, err = tx.Exec(ctx, `DELETE FROM challenges WHERE expires_at <= $1`, now)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("take challenge: %w", err)
	}
	return ok, nil
}
