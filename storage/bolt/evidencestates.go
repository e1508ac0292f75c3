package bolt

import (
	"context"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

var _ scheduler.EvidenceStateReader = (*Store)(nil)

// EvidenceStates implements scheduler.EvidenceStateReader: a page of
// whole states in one read transaction, by a cursor walk (the binary
// states decode fast enough whole).
func (s *Store) EvidenceStates(ctx context.Context, after string, limit int) ([]*scheduler.State, error) {
	var out []*scheduler.State
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bMSState).Cursor()
		k, v := c.Seek([]byte(after))
		if k != nil && string(k) == after {
			k, v = c.Next()
		}
		for ; k != nil && (limit <= 0 || len(out) < limit); k, v = c.Next() {
			st, err := decodeState(string(k), v)
			if err != nil {
				return err
			}
			out = append(out, st)
		}
		return nil
	})
	return out, err
}
