package bolt

import (
	"context"
	"encoding/json"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/storage"
)

// evidence holds the daily compliance evidence: key the day (YYYY-MM-DD),
// value the JSON storage.EvidenceDay. Keys sort by day, so old days are a
// prefix. A new bucket, created at open: older files need no migration.
var bEvidence = []byte("evidence")

func init() { allBuckets = append(allBuckets, bEvidence) }

var _ storage.EvidenceStore = (*Store)(nil)

// PutEvidenceDay implements storage.EvidenceStore.
func (s *Store) PutEvidenceDay(ctx context.Context, d storage.EvidenceDay) error {
	keepFrom, err := storage.CheckEvidenceDay(&d)
	if err != nil {
		return err
	}
	v, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode evidence of %s: %w", d.Day, err)
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bEvidence)
		// Keys are collected first: deleting under a cursor skips keys.
		var drop [][]byte
		c := b.Cursor()
		for k, _ := c.First(); k != nil && string(k) < keepFrom; k, _ = c.Next() {
			drop = append(drop, clone(k))
		}
		for _, k := range drop {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return b.Put([]byte(d.Day), v)
	})
}

// EvidenceDays implements storage.EvidenceStore.
func (s *Store) EvidenceDays(ctx context.Context, from, to string) ([]storage.EvidenceDay, error) {
	if err := storage.CheckEvidenceRange(from, to); err != nil {
		return nil, err
	}
	var out []storage.EvidenceDay
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bEvidence).Cursor()
		for k, v := c.Seek([]byte(from)); k != nil && string(k) <= to; k, v = c.Next() {
			var d storage.EvidenceDay
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("decode evidence of %s: %w", k, err)
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}
