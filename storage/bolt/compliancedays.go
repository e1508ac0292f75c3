package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/storage"
)

// compday holds the daily compliance per group: key <YYYY-MM-DD>\x00<group>,
// value the JSON row. Keys sort by day, so old days are a prefix.
var bCompDay = []byte("compday")

func init() { allBuckets = append(allBuckets, bCompDay) }

var _ storage.ComplianceDayStore = (*Store)(nil)

// PutComplianceDay implements storage.ComplianceDayStore.
func (s *Store) PutComplianceDay(ctx context.Context, day string, rows []storage.ComplianceDay) error {
	keepFrom, err := storage.CheckComplianceDay(day, rows)
	if err != nil {
		return err
	}
	vals := make([][]byte, len(rows))
	for i := range rows {
		if vals[i], err = json.Marshal(rows[i]); err != nil {
			return err
		}
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bCompDay)
		// Drop the days before keepFrom and the day's old rows (keys are
		// collected first: deleting under a cursor skips keys).
		var drop [][]byte
		c := b.Cursor()
		for k, _ := c.First(); k != nil && string(k) < keepFrom; k, _ = c.Next() {
			drop = append(drop, clone(k))
		}
		prefix := []byte(day + "\x00")
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			drop = append(drop, clone(k))
		}
		for _, k := range drop {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		for i, r := range rows {
			if err := b.Put([]byte(day+"\x00"+r.GroupID), vals[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// ComplianceDays implements storage.ComplianceDayStore.
func (s *Store) ComplianceDays(ctx context.Context, since string) ([]storage.ComplianceDay, error) {
	if _, err := time.Parse(time.DateOnly, since); err != nil {
		return nil, fmt.Errorf("compliance days since %q: want YYYY-MM-DD", since)
	}
	var out []storage.ComplianceDay
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bCompDay).Cursor()
		for k, v := c.Seek([]byte(since)); k != nil; k, v = c.Next() {
			if day, _, _ := strings.Cut(string(k), "\x00"); day < since {
				continue
			}
			var r storage.ComplianceDay
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}
