package pgsql

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/sundial-mdm/sundial/storage"
)

var _ storage.ForecastMarkStore = (*Store)(nil)

var forecastTable = jsonTable{table: "forecast_marks", key: "device_id", what: "forecast mark"}

// ForecastMarks implements storage.ForecastMarkStore.
func (s *Store) ForecastMarks(ctx context.Context) ([]storage.ForecastMark, error) {
	return loadJSON[storage.ForecastMark](ctx, s, forecastTable)
}

// UpdateForecastMarks implements storage.ForecastMarkStore: the marks go
// in as one array each way, not a statement per Mac.
func (s *Store) UpdateForecastMarks(ctx context.Context, put []storage.ForecastMark, drop []string, ds []storage.WebhookDelivery) error {
	if err := storage.CheckForecastUpdate(put, ds); err != nil {
		return err
	}
	if len(put) == 0 && len(drop) == 0 && len(ds) == 0 {
		return nil
	}
	ids, recs := make([]string, len(put)), make([]string, len(put))
	for i := range put {
		v, err := json.Marshal(&put[i])
		if err != nil {
			return err
		}
		ids[i], recs[i] = put[i].DeviceID, string(v)
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if len(drop) > 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM forecast_marks WHERE device_id = ANY($1::text[])`, drop); err != nil {
				return err
			}
		}
		if len(put) > 0 {
			if _, err := tx.Exec(ctx, `INSERT INTO forecast_marks (device_id, record)
				SELECT * FROM unnest($1::text[], $2::json[])
				ON CONFLICT (device_id) DO UPDATE SET record = EXCLUDED.record`, ids, recs); err != nil {
				return err
			}
		}
		return enqueueWebhooksTx(ctx, tx, ds)
	})
	if err != nil {
		return fmt.Errorf("update forecast marks: %w", err)
	}
	return nil
}
