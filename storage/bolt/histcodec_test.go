package bolt

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// fillTransition sets every field of a Transition to a distinct non-zero
// value by reflection, so that a field added without codec support fails
// the round trip below.
func fillTransition(t *testing.T) scheduler.Transition {
	t.Helper()
	var tr scheduler.Transition
	v := reflect.ValueOf(&tr).Elem()
	base := time.Date(2026, 11, 27, 21, 0, 0, 5, time.UTC)
	for i := 0; i < v.NumField(); i++ {
		f, name := v.Field(i), v.Type().Field(i).Name
		switch {
		case f.Type() == reflect.TypeOf(time.Time{}):
			f.Set(reflect.ValueOf(base.Add(time.Duration(i) * time.Hour)))
		case f.Kind() == reflect.String:
			f.SetString("v-" + name)
		default:
			t.Fatalf("Transition field %s has type %s: teach the codec (histcodec.go) and this test", name, f.Type())
		}
	}
	return tr
}

func TestTransitionCodec(t *testing.T) {
	for name, want := range map[string]scheduler.Transition{
		"every field": fillTransition(t),
		"empty":       {},
		"unicode":     {Reason: "échéance dépassée — forcer l’installation", At: time.Unix(1, 0).UTC()},
	} {
		var got scheduler.Transition
		if err := decodeTransition(encodeTransition(&want), &got); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: round trip = %+v, %v\nwant %+v", name, got, err, want)
		}
	}
	// Entries written as JSON by earlier versions read as before.
	want := fillTransition(t)
	js, _ := json.Marshal(want)
	var got scheduler.Transition
	if err := decodeTransition(js, &got); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("JSON entry = %+v, %v", got, err)
	}
	good := encodeTransition(&want)
	for name, v := range map[string][]byte{
		"empty":     {},
		"version":   append([]byte{0x7e}, good[1:]...),
		"truncated": good[:len(good)-1],
		"trailing":  append(append([]byte(nil), good...), 1),
		"bad JSON":  []byte(`{"at":`),
	} {
		if err := decodeTransition(v, &got); err == nil || !strings.Contains(err.Error(), "history entry") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func FuzzDecodeTransition(f *testing.F) {
	tr := scheduler.Transition{Kind: "phase", Reason: "r", At: time.Unix(5, 0).UTC()}
	f.Add(encodeTransition(&tr))
	f.Add([]byte(`{"kind":"phase"}`))
	f.Fuzz(func(t *testing.T, v []byte) {
		var got scheduler.Transition
		if decodeTransition(v, &got) != nil || v[0] == '{' {
			return
		}
		var again scheduler.Transition
		if err := decodeTransition(encodeTransition(&got), &again); err != nil || !reflect.DeepEqual(again, got) {
			t.Fatalf("round trip of %x: %+v, %v; want %+v", v, again, err, got)
		}
	})
}
