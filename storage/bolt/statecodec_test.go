package bolt

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// fillState sets every field of a State (and its Facts) to a distinct
// non-zero value by reflection, so that a field added to State without
// codec support fails the round trip below.
func fillState(t *testing.T) *scheduler.State {
	t.Helper()
	st := new(scheduler.State)
	base := time.Date(2026, 3, 20, 17, 0, 0, 123456789, time.UTC)
	var fill func(v reflect.Value, path string)
	n := 0
	fill = func(v reflect.Value, path string) {
		for i := 0; i < v.NumField(); i++ {
			f, name := v.Field(i), path+v.Type().Field(i).Name
			n++
			switch {
			case f.Type() == reflect.TypeOf(time.Time{}):
				f.Set(reflect.ValueOf(base.Add(time.Duration(n) * time.Hour)))
			case f.Kind() == reflect.Struct:
				fill(f, name+".")
			case f.Kind() == reflect.String:
				f.SetString("v-" + name)
			case f.Kind() == reflect.Bool:
				f.SetBool(true)
			case f.Kind() == reflect.Int:
				f.SetInt(int64(n))
			case f.Kind() == reflect.Uint64:
				f.SetUint(uint64(1000 + n))
			default:
				t.Fatalf("State field %s has kind %s: teach the codec (statecodec.go) and this test", name, f.Kind())
			}
		}
	}
	fill(reflect.ValueOf(st).Elem(), "")
	return st
}

func TestStateCodecRoundTrip(t *testing.T) {
	full := fillState(t)
	for name, st := range map[string]*scheduler.State{
		"every field": full,
		"empty":       {DeviceID: "D1"},
		"negative attempts and old times": {DeviceID: "D2", Attempts: -3,
			Deadline: time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC), NextDue: time.Unix(0, 0).UTC()},
	} {
		v := encodeState(st)
		got, err := decodeState(st.DeviceID, v)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, st) {
			t.Fatalf("%s: round trip\n got %+v\nwant %+v", name, got, st)
		}
	}
	js, _ := json.Marshal(full)
	if bin := encodeState(full); len(bin)*2 > len(js) {
		t.Errorf("binary state is %d bytes, JSON %d: expected well under half", len(bin), len(js))
	}
}

// TestStateCodecReadsJSON: records written by earlier versions as JSON still
// decode.
func TestStateCodecReadsJSON(t *testing.T) {
	st := fillState(t)
	js, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeState(st.DeviceID, js)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, st) {
		t.Fatalf("JSON state\n got %+v\nwant %+v", got, st)
	}
}

func TestStateCodecRejectsCorrupt(t *testing.T) {
	v := encodeState(fillState(t))
	for name, b := range map[string][]byte{
		"empty":           nil,
		"unknown format":  {0x7f, 1, 2},
		"truncated":       v[:len(v)/2],
		"trailing bytes":  append(append([]byte(nil), v...), 0),
		"string too long": {stateCodecV1, 0, 0, 0xff, 0x01},
	} {
		if _, err := decodeState("D", b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func FuzzDecodeState(f *testing.F) {
	f.Add(encodeState(&scheduler.State{DeviceID: "D", Phase: "notify", Attempts: 2, NextDue: time.Now()}))
	f.Add([]byte(`{"device_id":"D","rev":3}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeState("D", b)
		if err != nil || (len(b) > 0 && b[0] == '{') {
			return
		}
		again, err := decodeState("D", encodeState(st))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !reflect.DeepEqual(again, st) {
			t.Fatalf("unstable round trip\n got %+v\nwant %+v", again, st)
		}
	})
}

// TestUpgradeToSchema2 opens a file laid out by schema 1 (JSON states, no
// msnew index): states are rewritten in the binary form and devices without
// a state are indexed for the scheduler.
func TestUpgradeToSchema2(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sundial.db")
	s, err := Open(path, &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	old := fillState(t)
	old.DeviceID = "EVALUATED"
	js, _ := json.Marshal(old)
	s = rewriteAsSchema(t, s, 1, func(tx *bbolt.Tx) error {
		for _, id := range []string{"EVALUATED", "NEW", "NEW:user"} {
			if err := tx.Bucket(bDevices).Put([]byte(id), []byte(`{"id":"`+id+`"}`)); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bMSState).Put([]byte("EVALUATED"), js); err != nil {
			return err
		}
		if err := tx.DeleteBucket(bMSNew); err != nil {
			return err
		}
		_, err := tx.CreateBucket(bMSNew)
		return err
	})
	ids, err := s.Unevaluated(context.Background(), "", 0)
	if err != nil || !reflect.DeepEqual(ids, []string{"NEW"}) {
		t.Fatalf("Unevaluated = %v, %v; want [NEW]", ids, err)
	}
	s.db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bMSState).Get([]byte("EVALUATED")); len(v) == 0 || v[0] != stateCodecV1 {
			t.Errorf("state not rewritten in the binary form: %q", v)
		}
		if got := binary.BigEndian.Uint64(tx.Bucket(bMeta).Get([]byte("schema"))); got != schemaVersion {
			t.Errorf("schema = %d", got)
		}
		return nil
	})
	got, err := s.States(context.Background(), []string{"EVALUATED"})
	if err != nil || !reflect.DeepEqual(got[0], old) {
		t.Fatalf("state after upgrade = %+v, %v\nwant %+v", got[0], err, old)
	}
}

// TestStateCodecReadsRecordsWithoutErrors: a record written before the
// Errors field existed (it ends after NextDue) still decodes, with Errors 0.
func TestStateCodecReadsRecordsWithoutErrors(t *testing.T) {
	st := fillState(t)
	// Every field written after Errors is zero too: each is one byte.
	st.Errors, st.FailureSource, st.NotNowCount, st.NotNowSince = 0, "", 0, time.Time{}
	st.OfflineAt, st.GraceUntil, st.DeadlineMoved, st.Facts.TimeZone = time.Time{}, time.Time{}, "", ""
	st.NotifiedAt, st.PatchedTarget, st.PatchedAt, st.PatchedNotice, st.PatchedDeadline = time.Time{}, "", time.Time{}, time.Time{}, time.Time{}
	v := encodeState(st)
	old := v[:len(v)-13] // Errors, FailureSource, NotNowCount, NotNowSince, OfflineAt, GraceUntil, the 5 evidence fields, DeadlineMoved, Facts.TimeZone
	got, err := decodeState(st.DeviceID, old)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, st) {
		t.Fatalf("old record\n got %+v\nwant %+v", got, st)
	}
}
