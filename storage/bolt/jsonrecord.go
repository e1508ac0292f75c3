package bolt

import (
	"encoding/json"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// deleteAudited removes key from bucket with its audit entry in one
// transaction; what names the record in the not-found error.
func (s *Store) deleteAudited(bucket, key []byte, what string, audit *scheduler.AuditEntry) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucket)
		if b.Get(key) == nil {
			return fmt.Errorf("%s: %w", what, storage.ErrNotFound)
		}
		if err := b.Delete(key); err != nil {
			return err
		}
		return writeAudit(tx, audit)
	})
}

// loadJSON decodes every value of bucket, in key order.
func loadJSON[T any](s *Store, bucket []byte, what string) ([]T, error) {
	var out []T
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			var x T
			if err := json.Unmarshal(v, &x); err != nil {
				return fmt.Errorf("decode %s: %w", what, err)
			}
			out = append(out, x)
			return nil
		})
	})
	return out, err
}
