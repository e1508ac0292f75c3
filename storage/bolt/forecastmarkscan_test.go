package bolt

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/storage"
)

func forecastMarkCases(t testing.TB) [][]byte {
	m := storage.ForecastMark{DeviceID: "A", GroupID: "lab", Forecast: "at risk", Causes: []string{"agent alive", "free disk"},
		Reasons: []string{"low disk: 6.5 GB free, about 12 GB needed"}, Target: "15.2",
		Deadline: time.Date(2026, 3, 20, 17, 0, 0, 0, time.UTC), Since: time.Date(2026, 3, 16, 9, 0, 0, 123, time.FixedZone("x", 3600))}
	plain, err := json.Marshal(&m)
	if err != nil {
		t.Fatal(err)
	}
	m.Reasons, m.Deadline, m.GroupID = []string{"é \"q\" <b>"}, time.Time{}, "\u2028"
	escaped, err := json.Marshal(&m)
	if err != nil {
		t.Fatal(err)
	}
	return [][]byte{plain, escaped, []byte(`{}`), []byte(`{"causes":[],"reasons":null,"deadline":null}`),
		[]byte(`{"causes":["a",null]}`), []byte(`{"causes":["a"],"causes":["b","c"]}`), []byte(`{"Causes":["a"]}`),
		[]byte(`{"since":"2026-13-01T00:00:00Z"}`), []byte(`{"since":12}`), []byte(`{"x":{"y":[1,"]"]},"forecast":"f"}`),
		[]byte(`{"causes":["a" "b"]}`), []byte(`{"device_id":"A"`), []byte(`[]`)}
}

// TestScanForecastMark: where the scan reads a mark, it reads what
// json.Unmarshal reads; the marks json.Marshal writes are read.
func TestScanForecastMark(t *testing.T) {
	for i, v := range forecastMarkCases(t) {
		checkMarkScan(t, v)
		var m storage.ForecastMark
		if ok := scanForecastMark(v, &m); i == 0 && !ok {
			t.Errorf("a mark json.Marshal wrote is not scanned: %s", v)
		}
	}
}

func checkMarkScan(t *testing.T, v []byte) {
	t.Helper()
	var got, want storage.ForecastMark
	if !scanForecastMark(v, &got) {
		return
	}
	if err := json.Unmarshal(v, &want); err != nil {
		var probe map[string]json.RawMessage
		if json.Unmarshal(v, &probe) == nil {
			t.Errorf("scan read %q, json: %v", v, err)
		}
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("scan of %q = %+v, json %+v", v, got, want)
	}
}

func FuzzScanForecastMark(f *testing.F) {
	for _, v := range forecastMarkCases(f) {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v []byte) { checkMarkScan(t, v) })
}
