package bolt

import (
	"context"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/storage"
)

// catpoll   <kind>   JSON poll state of a feed (validators, last check)
var bCatPoll = []byte("catpoll")

func init() { allBuckets = append(allBuckets, bCatPoll) }

// DeleteManualRelease implements storage.CatalogStore.
func (s *Store) DeleteManualRelease(ctx context.Context, version string) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bCatMan)
		if b.Get([]byte(version)) == nil {
			return fmt.Errorf("manual release %q: %w", version, storage.ErrNotFound)
		}
		return b.Delete([]byte(version))
	})
}

// PutCatalogPoll implements storage.CatalogStore.
func (s *Store) PutCatalogPoll(ctx context.Context, kind string, state []byte) error {
	if err := storage.ValidCatalogPoll(kind, state); err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bCatPoll).Put([]byte(kind), state) })
}

// CatalogPolls implements storage.CatalogStore.
func (s *Store) CatalogPolls(ctx context.Context) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bCatPoll).ForEach(func(k, v []byte) error {
			out[string(k)] = clone(v)
			return nil
		})
	})
	return out, err
}
