package storagetest

import (
	"encoding/json"
	"fmt"
	"maps"
	"testing"

	"github.com/sundial-mdm/sundial/mdm/ddm"
)

// testDDMItemUpdates: status items are added, changed and removed one by
// one (backends store them apart, issue 21), each enrollment keeps its own
// (also when one ID is a prefix of another), values read back compacted,
// and an invalid item fails the whole update.
func testDDMItemUpdates(t *testing.T, s ddm.Store) {
	ctx := t.Context()
	set := func(id string, f func(items map[string]json.RawMessage)) error {
		return s.UpdateDDM(ctx, id, func(r *ddm.Record) ([]ddm.Event, error) {
			if r.Status.Items == nil {
				r.Status.Items = map[string]json.RawMessage{}
			}
			f(r.Status.Items)
			r.Status.Reports++
			return nil, nil
		})
	}
	get := func(id string) map[string]string {
		t.Helper()
		r, err := s.DDMRecord(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for k, v := range r.Status.Items {
			out[k] = string(v)
		}
		return out
	}
	odd := "name with spaces, é and a NUL \x00 byte"
	for _, id := range []string{"A", "AB", "A:USER"} {
		if err := set(id, func(items map[string]json.RawMessage) {
			items["softwareupdate.install-state"] = json.RawMessage(`"none"`)
			items["device.operating-system.version"] = json.RawMessage(`{ "v" : "` + id + `" }`)
			items[odd] = json.RawMessage(`[1, 2]`)
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := set("A", func(items map[string]json.RawMessage) {
		items["softwareupdate.install-state"] = json.RawMessage(`"downloading"`)
		delete(items, odd)
		items["new.item"] = json.RawMessage(`true`)
	}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"softwareupdate.install-state": `"downloading"`, "device.operating-system.version": `{"v":"A"}`, "new.item": `true`}
	if got := get("A"); !maps.Equal(got, want) {
		t.Errorf("A's items = %v, want %v", got, want)
	}
	for _, id := range []string{"AB", "A:USER"} {
		want := map[string]string{"softwareupdate.install-state": `"none"`, "device.operating-system.version": fmt.Sprintf(`{"v":%q}`, id), odd: `[1,2]`}
		if got := get(id); !maps.Equal(got, want) {
			t.Errorf("%s's items = %v, want %v", id, got, want)
		}
	}
	// An invalid item fails the update and writes none of it.
	before := get("A")
	if err := set("A", func(items map[string]json.RawMessage) {
		items["new.item"] = json.RawMessage(`false`)
		items["broken"] = json.RawMessage(`{"unterminated"`)
	}); err == nil {
		t.Error("an update with an invalid item succeeded")
	}
	if got := get("A"); !maps.Equal(got, before) {
		t.Errorf("a failed update changed the items: %v, want %v", got, before)
	}
	// Removing every item leaves none.
	if err := set("AB", func(items map[string]json.RawMessage) { clear(items) }); err != nil {
		t.Fatal(err)
	}
	if got := get("AB"); len(got) != 0 {
		t.Errorf("AB's items after clearing = %v", got)
	}
}
