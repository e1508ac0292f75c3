package bolt

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf8"
)

// scanReadinessDevice fills d from a stored device record in one pass
// over its bytes, as json.Unmarshal into d would, without json's separate
// validation pass and decoding (three quarters of the readiness inputs'
// CPU; docs/benchmarks.md). It handles the plain JSON json.Marshal writes
// and returns false on anything else (an escaped or non-UTF-8 string in a
// field it keeps, a key in another case, a value of an unexpected type,
// malformed input): the caller then decodes the record with encoding/json.
func scanReadinessDevice(v []byte, d *readinessDevice) bool {
	s := jsonScan{b: v}
	return s.object(func(key []byte) bool {
		switch {
		case string(key) == "parent_id":
			return s.str(&d.ParentID)
		case string(key) == "serial_number":
			return s.str(&d.SerialNumber)
		case string(key) == "inventory":
			if s.null() {
				return true
			}
			return s.object(func(key []byte) bool {
				switch {
				case string(key) == "serial_number":
					return s.str(&d.Inventory.SerialNumber)
				case string(key) == "available_device_capacity_gb":
					return s.float(&d.Inventory.AvailableDeviceCapacity)
				case strings.EqualFold(string(key), "serial_number"), strings.EqualFold(string(key), "available_device_capacity_gb"):
					return false // json matches keys in any case
				}
				return s.skip()
			})
		case strings.EqualFold(string(key), "parent_id"), strings.EqualFold(string(key), "serial_number"),
			strings.EqualFold(string(key), "inventory"):
			return false
		}
		return s.skip()
	}) && s.end()
}

// jsonScan walks JSON bytes; every method returns false on input it does
// not handle.
type jsonScan struct {
	b []byte
	i int
}

func (s *jsonScan) ws() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
}

// end reports whether only white space is left.
func (s *jsonScan) end() bool { s.ws(); return s.i == len(s.b) }

// object walks an object, calling member with each key (escape-free) and
// the scanner at its value; member must consume the value.
func (s *jsonScan) object(member func(key []byte) bool) bool {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return false
	}
	s.i++
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return true
	}
	for {
		key, ok := s.rawString()
		if !ok || bytes.IndexByte(key, '\\') >= 0 {
			return false
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return false
		}
		s.i++
		s.ws()
		if !member(key) {
			return false
		}
		s.ws()
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
			s.ws()
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
}

// rawString reads a string's bytes between its quotes (escapes kept).
func (s *jsonScan) rawString() ([]byte, bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '\\':
			j++
		case c == '"':
			s.i = j + 1
			return s.b[start:j], true
		case c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

// null consumes a null.
func (s *jsonScan) null() bool {
	if bytes.HasPrefix(s.b[s.i:], []byte("null")) {
		s.i += 4
		return true
	}
	return false
}

// str reads a string without escapes into dst (null leaves dst as is).
func (s *jsonScan) str(dst *string) bool {
	if s.null() {
		return true
	}
	raw, ok := s.rawString()
	if !ok || bytes.IndexByte(raw, '\\') >= 0 || !utf8.Valid(raw) {
		return false
	}
	*dst = string(raw)
	return true
}

// float reads a number into dst (null leaves dst as is).
func (s *jsonScan) float(dst *float64) bool {
	if s.null() {
		return true
	}
	start := s.i
	for s.i < len(s.b) && strings.IndexByte("+-.0123456789eE", s.b[s.i]) >= 0 {
		s.i++
	}
	if s.i == start || (s.b[start] != '-' && (s.b[start] < '0' || s.b[start] > '9')) {
		return false
	}
	f, err := strconv.ParseFloat(string(s.b[start:s.i]), 64)
	if err != nil {
		return false
	}
	*dst = f
	return true
}

// skip consumes any value: a string, or everything up to the matching
// close of an object or array (strings inside skipped whole), or a
// literal up to the next delimiter. It does not validate what it skips.
func (s *jsonScan) skip() bool {
	if s.i >= len(s.b) {
		return false
	}
	switch s.b[s.i] {
	case '"':
		_, ok := s.rawString()
		return ok
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				if _, ok := s.rawString(); !ok {
					return false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return true
				}
			}
			s.i++
		}
		return false
	}
	start := s.i
	for s.i < len(s.b) && strings.IndexByte(",}] \t\n\r", s.b[s.i]) < 0 {
		s.i++
	}
	return s.i > start
}
