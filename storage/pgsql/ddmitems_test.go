package pgsql

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sundial-mdm/sundial/mdm/ddm"
)

// storedItems returns the ddm_items rows of id.
func storedItems(t *testing.T, db testDB, id string) map[string]string {
	t.Helper()
	conn := db.conn(t)
	defer conn.Close(t.Context())
	rows, err := conn.Query(t.Context(), `SELECT convert_from(name, 'UTF8'), value::text FROM ddm_items WHERE id = $1`, id)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	var name, value string
	if _, err := pgx.ForEachRow(rows, []any{&name, &value}, func() error { out[name] = value; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDDMItemsStoredApart(t *testing.T) {
	db := newTestDB(t)
	s := db.open(t)
	ctx := t.Context()
	err := s.UpdateDDM(ctx, "A", func(r *ddm.Record) ([]ddm.Event, error) {
		r.Status.Items = map[string]json.RawMessage{"a": json.RawMessage(`{ "x" : 1 }`), "b": json.RawMessage(`2`), "c": json.RawMessage(`"c"`)}
		r.Status.Reports = 1
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.UpdateDDM(ctx, "A", func(r *ddm.Record) ([]ddm.Event, error) {
		if string(r.Status.Items["a"]) != `{"x":1}` {
			t.Errorf("item a read back as %s, want it compacted", r.Status.Items["a"])
		}
		r.Status.Items["a"] = json.RawMessage(`{"x":2}`)
		delete(r.Status.Items, "b")
		r.Status.Reports++
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := storedItems(t, db, "A"), map[string]string{"a": `{"x":2}`, "c": `"c"`}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stored items = %v, want %v", got, want)
	}
	var rec string
	conn := db.conn(t)
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, `SELECT record::text FROM ddm_records WHERE id = 'A'`).Scan(&rec); err != nil || strings.Contains(rec, `"items"`) {
		t.Errorf("record = %s, %v; want it without items", rec, err)
	}
	r, err := s.DDMRecord(ctx, "A")
	if err != nil || r.Status.Reports != 2 || len(r.Status.Items) != 2 || string(r.Status.Items["c"]) != `"c"` {
		t.Errorf("DDMRecord = %+v, %v", r, err)
	}
	err = s.UpdateDDM(ctx, "A", func(r *ddm.Record) ([]ddm.Event, error) {
		r.Status.Items["bad"] = json.RawMessage(`{`)
		r.Status.Reports = 99
		return nil, nil
	})
	if err == nil {
		t.Error("an invalid item was stored")
	}
	if r, _ := s.DDMRecord(ctx, "A"); r.Status.Reports != 2 || r.Status.Items["bad"] != nil {
		t.Errorf("a refused update changed the record: %+v", r)
	}
}

// TestDDMItemsMigration: migration 0012 moves the items of records written
// before it into ddm_items.
func TestDDMItemsMigration(t *testing.T) {
	db := newTestDB(t)
	db.open(t).Close()
	// Lay the schema out as version 11 left it, with a record holding items.
	db.exec(t, `DROP TABLE ddm_items`)
	db.exec(t, `DELETE FROM sundial_schema_migrations WHERE version >= 12`)
	db.exec(t, `INSERT INTO ddm_records (id, record) VALUES
		('OLD', '{"needs_sync":true,"status":{"items":{"a.b":{"x":  1},"c":"v"},"current":{},"reports":7}}'),
		('NOITEMS', '{"status":{"current":{},"reports":1}}'),
		('NUL', '{"status":{"items":{"n\u0000ul":"\u0000","d":1},"current":{},"reports":3}}')`)
	s := db.open(t)
	// A record whose items json_each cannot read keeps them in the record:
	// they read back, and move to rows at its next update, which can also
	// remove one for good.
	if r, err := s.DDMRecord(t.Context(), "NUL"); err != nil || len(r.Status.Items) != 2 || string(r.Status.Items["n\x00ul"]) != `"\u0000"` {
		t.Fatalf("record with a NUL name = %+v, %v", r, err)
	}
	err := s.UpdateDDM(t.Context(), "NUL", func(r *ddm.Record) ([]ddm.Event, error) {
		delete(r.Status.Items, "d")
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := s.DDMRecord(t.Context(), "NUL"); err != nil || len(r.Status.Items) != 1 || string(r.Status.Items["n\x00ul"]) != `"\u0000"` {
		t.Errorf("record with a NUL name after an update = %+v, %v", r, err)
	}
	r, err := s.DDMRecord(t.Context(), "OLD")
	if err != nil {
		t.Fatal(err)
	}
	if !r.NeedsSync || r.Status.Reports != 7 || len(r.Status.Items) != 2 || string(r.Status.Items["a.b"]) != `{"x":  1}` || string(r.Status.Items["c"]) != `"v"` {
		t.Errorf("migrated record = %+v, items %q", r, r.Status.Items)
	}
	if n := len(storedItems(t, db, "OLD")); n != 2 {
		t.Errorf("%d item rows, want 2", n)
	}
	if r, err := s.DDMRecord(t.Context(), "NOITEMS"); err != nil || r.Status.Reports != 1 || r.Status.Items != nil {
		t.Errorf("record without items = %+v, %v", r, err)
	}
}

// BenchmarkDDMStatusUpdate compares one status item changed in a full
// record (512 items, 128 KiB) stored a row per item with the same change
// stored as before migration 0012, the whole record rewritten in one row.
func BenchmarkDDMStatusUpdate(b *testing.B) {
	full := func() map[string]json.RawMessage {
		items := make(map[string]json.RawMessage, 512)
		for i := range 512 {
			items[fmt.Sprintf("vendor.item.%04d", i)] = json.RawMessage(fmt.Sprintf(`{"v":%d,"pad":%q}`, i, strings.Repeat("x", 210)))
		}
		return items
	}
	b.Run("one-item", func(b *testing.B) {
		s := newTestDB(b).open(b)
		ctx := b.Context()
		if err := s.UpdateDDM(ctx, "A", func(r *ddm.Record) ([]ddm.Event, error) { r.Status.Items = full(); return nil, nil }); err != nil {
			b.Fatal(err)
		}
		i := 0
		for b.Loop() {
			i++
			err := s.UpdateDDM(ctx, "A", func(r *ddm.Record) ([]ddm.Event, error) {
				r.Status.Items["vendor.item.0007"] = json.RawMessage(fmt.Sprintf(`{"v":%d}`, i))
				r.Status.Reports++
				return nil, nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("whole-record", func(b *testing.B) {
		s := newTestDB(b).open(b)
		ctx := b.Context()
		r := &ddm.Record{Status: ddm.DeviceStatus{Items: full()}}
		if _, err := s.pool.Exec(ctx, `INSERT INTO ddm_records (id, record) VALUES ('A', '{}')`); err != nil {
			b.Fatal(err)
		}
		i := 0
		for b.Loop() {
			i++
			err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
				var raw []byte
				if err := tx.QueryRow(ctx, `SELECT record FROM ddm_records WHERE id = 'A' FOR UPDATE`).Scan(&raw); err != nil {
					return err
				}
				var old ddm.Record
				if err := json.Unmarshal(raw, &old); err != nil {
					return err
				}
				r.Status.Items["vendor.item.0007"] = json.RawMessage(fmt.Sprintf(`{"v":%d}`, i))
				r.Status.Reports++
				v, err := json.Marshal(r)
				if err != nil {
					return err
				}
				_, err = tx.Exec(ctx, `UPDATE ddm_records SET record = $1 WHERE id = 'A'`, string(v))
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
