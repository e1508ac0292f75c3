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

// PutAPIKey implements storage.APIKeyStore.
func (s *Store) PutAPIKey(ctx context.Context, k storage.APIKey) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		if tx.Bucket(bAPIKeys).Get([]byte(k.ID)) != nil {
			return fmt.Errorf("api key %s: %w", k.ID, storage.ErrExists)
		}
		v, err := json.Marshal(apiKeyRecord{APIKey: k, Hash: k.Hash})
		if err != nil {
			return err
		}
		if err := tx.Bucket(bAPIKeys).Put([]byte(k.ID), v); err != nil {
			return err
		}
		return tx.Bucket(bAPIKeyH).Put([]byte(k.Hash), []byte(k.ID))
	})
}

type apiKeyRecord struct {
	storage.APIKey
	Hash string `json:"hash"`
}

func getAPIKey(tx *bbolt.Tx, id []byte) (*storage.APIKey, error) {
	v := tx.Bucket(bAPIKeys).Get(id)
	if v == nil {
		return nil, fmt.Errorf("api key %s: %w", id, storage.ErrNotFound)
	}
	var r apiKeyRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("decode api key: %w", err)
	}
	k := r.APIKey
	k.Hash = r.Hash
	return &k, nil
}

// APIKeyByHash implements storage.APIKeyStore.
func (s *Store) APIKeyByHash(ctx context.Context, hash string) (*storage.APIKey, error) {
	var k *storage.APIKey
	err := s.db.View(func(tx *bbolt.Tx) error {
		id := tx.Bucket(bAPIKeyH).Get([]byte(hash))
		if id == nil {
			return storage.ErrNotFound
		}
		var err error
		k, err = getAPIKey(tx, id)
		return err
	})
	return k, err
}

// APIKeys implements storage.APIKeyStore.
func (s *Store) APIKeys(ctx context.Context) ([]storage.APIKey, error) {
	var out []storage.APIKey
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bAPIKeys).ForEach(func(k, _ []byte) error {
			key, err := getAPIKey(tx, k)
			if err != nil {
				return err
			}
			out = append(out, *key)
			return nil
		})
	})
	return out, err
}

// RevokeAPIKey implements storage.APIKeyStore.
func (s *Store) RevokeAPIKey(ctx context.Context, id string, now time.Time) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		k, err := getAPIKey(tx, []byte(id))
		if err != nil {
			return err
		}
		if k.RevokedAt.IsZero() {
			k.RevokedAt = now
		}
		v, err := json.Marshal(apiKeyRecord{APIKey: *k, Hash: k.Hash})
		if err != nil {
			return err
		}
		return tx.Bucket(bAPIKeys).Put([]byte(id), v)
	})
}

// PutChallenge implements storage.ChallengeStore.
func (s *Store) PutChallenge(ctx context.Context, key string, expires time.Time) error {
	return s.db.Batch(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bChall)
		if old := b.Get([]byte(key)); old != nil {
			if err := tx.Bucket(bChallDue).Delete(append(bytes.Clone(old), key...)); err != nil {
				return err
			}
		}
		if err := b.Put([]byte(key), unixNanos(expires)); err != nil {
			return err
		}
		return tx.Bucket(bChallDue).Put(challDueKey(expires, key), nil)
	})
}

// TakeChallenge implements storage.ChallengeStore. Up to challSweepBatch
// expired challenges are deleted too, oldest first (challsweep.go).
func (s *Store) TakeChallenge(ctx context.Context, key string, now time.Time) (bool, error) {
	var ok bool
	err := s.db.Batch(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bChall)
		v := b.Get([]byte(key))
		ok = v != nil && fromNanos(v).After(now)
		if v != nil {
			if err := tx.Bucket(bChallDue).Delete(append(bytes.Clone(v), key...)); err != nil {
				return err
			}
			if err := b.Delete([]byte(key)); err != nil {
				return err
			}
		}
		return sweepChallenges(tx, now)
	})
	return ok, err
}
