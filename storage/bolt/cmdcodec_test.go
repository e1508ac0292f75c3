package bolt

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
)

// fillRecord sets every stored field of a CommandRecord to a distinct
// non-zero value by reflection, so that a field added without codec support
// fails the round trip below. Raw and Result live in their own buckets.
func fillRecord(t *testing.T) *mdm.CommandRecord {
	t.Helper()
	rec := new(mdm.CommandRecord)
	v := reflect.ValueOf(rec).Elem()
	base := time.Date(2026, 11, 27, 20, 0, 0, 987654321, time.UTC)
	for i := 0; i < v.NumField(); i++ {
		f, name := v.Field(i), v.Type().Field(i).Name
		switch {
		case name == "Raw" || name == "Result":
		case f.Type() == reflect.TypeOf(time.Time{}):
			f.Set(reflect.ValueOf(base.Add(time.Duration(i) * time.Minute)))
		case f.Kind() == reflect.String:
			f.SetString("v-" + name)
		case f.Kind() == reflect.Int:
			f.SetInt(int64(7 + i))
		case f.Kind() == reflect.Uint64:
			f.SetUint(uint64(1 << 40))
		case f.Type() == reflect.TypeOf([]mdm.ErrorChainItem(nil)):
			f.Set(reflect.ValueOf([]mdm.ErrorChainItem{
				{ErrorCode: 12021, ErrorDomain: "MCMDMErrorDomain", LocalizedDescription: "Unknown command", USEnglishDescription: "Unknown command"},
				{ErrorCode: -1},
			}))
		case f.Type() == reflect.TypeOf([]mdm.StatusEvent(nil)):
			f.Set(reflect.ValueOf([]mdm.StatusEvent{{Status: "Queued", At: base}, {Status: "NotNow", At: base.Add(time.Second)}}))
		default:
			t.Fatalf("CommandRecord field %s has type %s: teach the codec (cmdcodec.go) and this test", name, f.Type())
		}
	}
	return rec
}

func TestRecordCodecRoundTrip(t *testing.T) {
	full := fillRecord(t)
	for name, rec := range map[string]*mdm.CommandRecord{
		"every field": full,
		"queued":      {EnrollmentID: "E", UUID: "U", RequestType: "DeviceInformation", Seq: 1, Status: mdm.StatusQueued, History: []mdm.StatusEvent{}},
		"negative":    {NotNowCount: -1, QueuedAt: time.Unix(-5, 0).UTC(), History: []mdm.StatusEvent{}},
	} {
		v := encodeRecord(rec)
		got, err := decodeRecord(v)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, rec) {
			t.Errorf("%s: round trip\n got %+v\nwant %+v", name, got, rec)
		}
		js, _ := json.Marshal(rec)
		if name == "every field" && len(v)*2 > len(js) {
			t.Errorf("binary record is %d bytes, JSON %d", len(v), len(js))
		}
	}
}

// A record written by an earlier version as JSON reads as before, with its
// inline result.
func TestRecordCodecReadsJSON(t *testing.T) {
	want := fillRecord(t)
	want.Result = []byte("<plist/>")
	js, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeRecord(js)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("JSON record = %+v, %v\nwant %+v", got, err, want)
	}
}

func TestRecordCodecRejectsDamage(t *testing.T) {
	good := encodeRecord(fillRecord(t))
	for name, v := range map[string][]byte{
		"empty":            {},
		"unknown version":  append([]byte{0x7f}, good[1:]...),
		"truncated":        good[:len(good)-3],
		"trailing bytes":   append(append([]byte(nil), good...), 0),
		"huge error chain": {recordCodecV1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f},
		"bad JSON":         []byte(`{"seq":`),
	} {
		if _, err := decodeRecord(v); err == nil {
			t.Errorf("%s: decoded", name)
		} else if !strings.Contains(err.Error(), "command record") || strings.Contains(err.Error(), "update state") {
			t.Errorf("%s: error %q does not say what was damaged", name, err)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeRecord(&mdm.CommandRecord{EnrollmentID: "E", UUID: "U", History: []mdm.StatusEvent{{Status: "Queued"}}}))
	f.Add([]byte(`{"enrollment_id":"E"}`))
	f.Fuzz(func(t *testing.T, v []byte) {
		rec, err := decodeRecord(v)
		if err != nil || v[0] == '{' {
			return
		}
		// What decodes survives a round trip unchanged.
		again, err := decodeRecord(encodeRecord(rec))
		if err != nil || !reflect.DeepEqual(again, rec) {
			t.Fatalf("round trip of %x: %+v, %v; want %+v", v, again, err, rec)
		}
	})
}
