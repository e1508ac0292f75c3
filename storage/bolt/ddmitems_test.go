package bolt

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/mdm/ddm"
)

// fullItems is a status record at the merged caps: 512 items of about
// 250 bytes (names and values), 128 KiB in all.
func fullItems() map[string]json.RawMessage {
	items := make(map[string]json.RawMessage, 512)
	for i := range 512 {
		items[fmt.Sprintf("vendor.item.%04d", i)] = json.RawMessage(fmt.Sprintf(`{"v":%d,"pad":%q}`, i, strings.Repeat("x", 210)))
	}
	return items
}

func openTemp(t testing.TB) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// itemKeys returns the stored items of id, raw.
func itemKeys(t *testing.T, s *Store, id string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		p := prefix(id)
		c := tx.Bucket(bDDMItems).Cursor()
		for k, v := c.Seek(p); k != nil && strings.HasPrefix(string(k), string(p)); k, v = c.Next() {
			out[string(k[len(p):])] = string(v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDDMItemsStoredApart(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	err := s.UpdateDDM(ctx, "A", func(r *ddm.Record) ([]ddm.Event, error) {
		r.Status.Items = map[string]json.RawMessage{"a": json.RawMessage(`{ "x" : 1 }`), "b": json.RawMessage(`2`), "c": json.RawMessage(`"c"`)}
		r.Status.Reports = 1
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// An update that changes a, drops b and keeps c.
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
	if got, want := itemKeys(t, s, "A"), map[string]string{"a": `{"x":2}`, "c": `"c"`}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stored items = %v, want %v", got, want)
	}
	err = s.db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bDDM).Get([]byte("A")); strings.Contains(string(v), `"items"`) {
			t.Errorf("record still holds its items: %s", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.DDMRecord(ctx, "A")
	if err != nil || r.Status.Reports != 2 || len(r.Status.Items) != 2 || string(r.Status.Items["c"]) != `"c"` {
		t.Errorf("DDMRecord = %+v, %v", r, err)
	}
	// Invalid JSON in an item is refused and changes nothing.
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

func TestDDMItemsMigratedOnOpen(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	items := fullItems()
	legacy := &ddm.Record{NeedsSync: true, Status: ddm.DeviceStatus{Items: items, Reports: 7}}
	// Schema 6 kept the items inside the record.
	s = rewriteAsSchema(t, s, 6, func(tx *bbolt.Tx) error {
		v, err := json.Marshal(legacy)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bDDM).Put([]byte("OLD"), v); err != nil {
			return err
		}
		return tx.Bucket(bDDM).Put([]byte("NOITEMS"), []byte(`{"needs_sync":true,"status":{"current":{},"reports":0}}`))
	})
	r, err := s.DDMRecord(ctx, "OLD")
	if err != nil {
		t.Fatal(err)
	}
	if !r.NeedsSync || r.Status.Reports != 7 || len(r.Status.Items) != len(items) {
		t.Fatalf("migrated record = needs_sync %v, reports %d, %d items", r.NeedsSync, r.Status.Reports, len(r.Status.Items))
	}
	for k, v := range items {
		if string(r.Status.Items[k]) != string(v) {
			t.Fatalf("item %s = %s, want %s", k, r.Status.Items[k], v)
		}
	}
	if n := len(itemKeys(t, s, "OLD")); n != len(items) {
		t.Errorf("%d item keys after the upgrade, want %d", n, len(items))
	}
	if r, err := s.DDMRecord(ctx, "NOITEMS"); err != nil || !r.NeedsSync || r.Status.Items != nil {
		t.Errorf("record without items = %+v, %v", r, err)
	}
}

// BenchmarkDDMStatusUpdate compares one status item changed in a full
// record (512 items, 128 KiB) stored an item a key with the same change
// stored the schema 6 way, the whole record rewritten as one value.
func BenchmarkDDMStatusUpdate(b *testing.B) {
	b.Run("one-item", func(b *testing.B) {
		s := openTemp(b)
		ctx := b.Context()
		if err := s.UpdateDDM(ctx, "A", func(r *ddm.Record) ([]ddm.Event, error) { r.Status.Items = fullItems(); return nil, nil }); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
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
		s := openTemp(b)
		r := &ddm.Record{Status: ddm.DeviceStatus{Items: fullItems()}}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			err := s.db.Update(func(tx *bbolt.Tx) error {
				var old ddm.Record
				if v := tx.Bucket(bDDM).Get([]byte("A")); v != nil {
					if err := json.Unmarshal(v, &old); err != nil {
						return err
					}
				}
				r.Status.Items["vendor.item.0007"] = json.RawMessage(fmt.Sprintf(`{"v":%d}`, i))
				r.Status.Reports++
				v, err := json.Marshal(r)
				if err != nil {
					return err
				}
				return tx.Bucket(bDDM).Put([]byte("A"), v)
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
