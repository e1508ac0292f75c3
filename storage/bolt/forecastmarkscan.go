package bolt

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/storage"
)

// forecastMarks decodes every stored mark in key order: the leader's
// readiness check and the console's snapshot read all of them (tens of
// thousands when most Macs lack an agent), so each is scanned in one pass
// (scanForecastMark) and only an unusual record goes to encoding/json.
func forecastMarks(tx *bbolt.Tx) ([]storage.ForecastMark, error) {
	b := tx.Bucket(bForecastMark)
	// Sized up front (the page walk of Stats costs far less than growing a
	// slice of tens of thousands of marks), each mark decoded in place.
	out := make([]storage.ForecastMark, 0, b.Stats().KeyN)
	err := b.ForEach(func(k, v []byte) error {
		out = append(out, storage.ForecastMark{})
		m := &out[len(out)-1]
		if !scanForecastMark(v, m) {
			*m = storage.ForecastMark{}
			if err := json.Unmarshal(v, m); err != nil {
				return fmt.Errorf("decode forecast mark: %w", err)
			}
		}
		return nil
	})
	if len(out) == 0 {
		out = nil // as before: no marks, no slice
	}
	return out, err
}

// scanForecastMark fills m from a stored mark as json.Unmarshal would, in
// one pass; false for anything but the plain JSON json.Marshal writes
// (see scanReadinessDevice).
func scanForecastMark(v []byte, m *storage.ForecastMark) bool {
	s := jsonScan{b: v}
	return s.object(func(key []byte) bool {
		switch string(key) {
		case "device_id":
			return s.str(&m.DeviceID)
		case "group_id":
			return s.str(&m.GroupID)
		case "forecast":
			return s.str(&m.Forecast)
		case "target":
			return s.str(&m.Target)
		case "causes":
			return s.strs(&m.Causes)
		case "reasons":
			return s.strs(&m.Reasons)
		case "deadline":
			return s.time(&m.Deadline)
		case "since":
			return s.time(&m.Since)
		}
		for _, k := range []string{"device_id", "group_id", "forecast", "target", "causes", "reasons", "deadline", "since"} {
			if strings.EqualFold(string(key), k) {
				return false // json matches keys in any case
			}
		}
		return s.skip()
	}) && s.end()
}

// strs reads an array of strings without escapes (null sets dst to nil,
// as json does for a slice).
func (s *jsonScan) strs(dst *[]string) bool {
	if s.null() {
		*dst = nil
		return true
	}
	if s.i >= len(s.b) || s.b[s.i] != '[' {
		return false
	}
	s.i++
	out := []string{}
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		*dst = out
		return true
	}
	for {
		s.ws()
		var x string
		if s.null() || !s.str(&x) {
			return false // a null element is rare enough to leave to json
		}
		out = append(out, x)
		s.ws()
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			*dst = out
			return true
		default:
			return false
		}
	}
}

// time reads a time as json does, through time.Time's UnmarshalJSON.
func (s *jsonScan) time(dst *time.Time) bool {
	start := s.i
	if !s.null() {
		if _, ok := s.rawString(); !ok {
			return false
		}
	}
	return dst.UnmarshalJSON(s.b[start:s.i]) == nil
}
