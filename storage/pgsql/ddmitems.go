package pgsql

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/sundial-mdm/sundial/mdm/ddm"
)

// Status items are stored a row each in ddm_items (migration 0012), so
// that a status report writes only the items it changed; ddm_records.record
// holds the rest of the record.

// loadDDMItems reads the status item rows of id into r, over any items
// the record itself still holds (one written before migration 0012, until
// its next update), and returns the rows read: what is stored apart.
func loadDDMItems(ctx context.Context, q querier, id string, r *ddm.Record) (map[string]json.RawMessage, error) {
	stored := map[string]json.RawMessage{}
	rows, err := q.Query(ctx, `SELECT name, value FROM ddm_items WHERE id = $1`, id)
	if err != nil {
		return nil, fmt.Errorf("read status items of %s: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, value []byte
		if err := rows.Scan(&name, &value); err != nil {
			return nil, fmt.Errorf("read status items of %s: %w", id, err)
		}
		if r.Status.Items == nil {
			r.Status.Items = map[string]json.RawMessage{}
		}
		r.Status.Items[string(name)] = value
		stored[string(name)] = value
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read status items of %s: %w", id, err)
	}
	return stored, nil
}

// encodeDDMBase encodes r without its status items.
func encodeDDMBase(id string, r *ddm.Record) ([]byte, error) {
	items := r.Status.Items
	r.Status.Items = nil
	v, err := json.Marshal(r)
	r.Status.Items = items
	if err != nil {
		return nil, fmt.Errorf("encode declarative record %s: %w", id, err)
	}
	return v, nil
}

// queueDDMItems queues on b the writes that turn the stored item rows
// `old` into r's: the changed and new items (compacted, as encoding the whole
// record stored them; invalid JSON is refused), and the deletion of those
// gone.
func queueDDMItems(b *pgx.Batch, id string, r *ddm.Record, old map[string]json.RawMessage) error {
	var (
		names, gone [][]byte
		values      []string
	)
	for name, val := range r.Status.Items {
		ov, had := old[name]
		if had && bytes.Equal(ov, val) {
			continue
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, val); err != nil {
			return fmt.Errorf("encode status item %q of %s: %w", name, id, err)
		}
		if had && bytes.Equal(ov, buf.Bytes()) {
			continue
		}
		names, values = append(names, []byte(name)), append(values, buf.String())
	}
	for name := range old {
		if _, ok := r.Status.Items[name]; !ok {
			gone = append(gone, []byte(name))
		}
	}
	if len(gone) > 0 {
		b.Queue(`DELETE FROM ddm_items WHERE id = $1 AND name = ANY($2)`, id, gone)
	}
	if len(names) > 0 {
		b.Queue(`INSERT INTO ddm_items (id, name, value)
			SELECT $1, i.name, i.value::json FROM unnest($2::bytea[], $3::text[]) AS i(name, value)
			ON CONFLICT (id, name) DO UPDATE SET value = EXCLUDED.value`, id, names, values)
	}
	return nil
}
