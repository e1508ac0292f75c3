package bolt

import (
	"context"
	"encoding/json"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/storage"
)

// fcmark holds each Mac's last recorded readiness forecast: key the
// device ID, value the JSON storage.ForecastMark.
var bForecastMark = []byte("fcmark")

func init() { allBuckets = append(allBuckets, bForecastMark) }

var _ storage.ForecastMarkStore = (*Store)(nil)

// ForecastMarks implements storage.ForecastMarkStore.
func (s *Store) ForecastMarks(ctx context.Context) ([]storage.ForecastMark, error) {
	var out []storage.ForecastMark
	err := s.db.View(func(tx *bbolt.Tx) (err error) {
		out, err = forecastMarks(tx)
		return err
	})
	return out, err
}

// UpdateForecastMarks implements storage.ForecastMarkStore.
func (s *Store) UpdateForecastMarks(ctx context.Context, put []storage.ForecastMark, drop []string, ds []storage.WebhookDelivery) error {
	if err := storage.CheckForecastUpdate(put, ds); err != nil {
		return err
	}
	if len(put) == 0 && len(drop) == 0 && len(ds) == 0 {
		return nil
	}
	marks := make([][]byte, len(put))
	for i := range put {
		v, err := json.Marshal(&put[i])
		if err != nil {
			return err
		}
		marks[i] = v
	}
	vals := make([][]byte, len(ds))
	for i := range ds {
		v, err := json.Marshal(&ds[i])
		if err != nil {
			return err
		}
		vals[i] = v
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bForecastMark)
		for _, id := range drop {
			if err := b.Delete([]byte(id)); err != nil {
				return err
			}
		}
		for i := range put {
			if err := b.Put([]byte(put[i].DeviceID), marks[i]); err != nil {
				return err
			}
		}
		return enqueueWebhooksTx(tx, ds, vals)
	})
}
