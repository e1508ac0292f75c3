package bolt

import (
	"context"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/storage"
)

// Catalog buckets:
//
//	catfeed   <kind>     raw feed body
//	catman    <version>  JSON release added by hand
var (
	bCatFeed = []byte("catfeed")
	bCatMan  = []byte("catman")
)

func init() { allBuckets = append(allBuckets, bCatFeed, bCatMan) }

var _ storage.CatalogStore = (*Store)(nil)

// PutCatalogFeed implements storage.CatalogStore.
func (s *Store) PutCatalogFeed(ctx context.Context, kind string, body []byte, now time.Time) error {
	return s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bCatFeed).Put([]byte(kind), body) })
}

// CatalogFeeds implements storage.CatalogStore.
func (s *Store) CatalogFeeds(ctx context.Context) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bCatFeed).ForEach(func(k, v []byte) error {
			out[string(k)] = clone(v)
			return nil
		})
	})
	return out, err
}

// PutManualRelease implements storage.CatalogStore.
func (s *Store) PutManualRelease(ctx context.Context, version string, rel []byte) error {
	return s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bCatMan).Put([]byte(version), rel) })
}

// ManualReleases implements storage.CatalogStore.
func (s *Store) ManualReleases(ctx context.Context) ([][]byte, error) {
	var out [][]byte
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bCatMan).ForEach(func(_, v []byte) error {
			out = append(out, clone(v))
			return nil
		})
	})
	return out, err
}
