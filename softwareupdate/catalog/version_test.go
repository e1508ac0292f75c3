package catalog

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestParseVersion(t *testing.T) {
	tests := []struct {
		have                string
		major, minor, patch int
		wantString          string
	}{
		{"15", 15, 0, 0, "15.0"},
		{"15.0", 15, 0, 0, "15.0"},
		{"15.0.0", 15, 0, 0, "15.0"},
		{"26.6.2", 26, 6, 2, "26.6.2"},
		{"14.7.10", 14, 7, 10, "14.7.10"},
		{"10.15.7", 10, 15, 7, "10.15.7"},
		{"15.07", 15, 7, 0, "15.7"},
		{"9999.9999.9999", 9999, 9999, 9999, "9999.9999.9999"},
	}
	for _, tt := range tests {
		t.Run(tt.have, func(t *testing.T) {
			v, err := ParseVersion(tt.have)
			if err != nil {
				t.Fatalf("ParseVersion(%q): %v", tt.have, err)
			}
			if v.Major() != tt.major || v.Minor() != tt.minor || v.Patch() != tt.patch {
				t.Errorf("ParseVersion(%q) = %d.%d.%d, want %d.%d.%d", tt.have, v.Major(), v.Minor(), v.Patch(), tt.major, tt.minor, tt.patch)
			}
			if got := v.String(); got != tt.wantString {
				t.Errorf("String() = %q, want %q", got, tt.wantString)
			}
		})
	}
}

func TestParseVersionRejects(t *testing.T) {
	for _, have := range []string{
		"", ".", "15.", ".15", "15..1", "a", "15.x", "-1", "+15", "15.-1",
		"1.2.3.4", "0", "0.1", " 15", "15 ", "15.7.9 (a)", "1e3", "10000",
		"15.10000", "٣", "15.7.9\x00", "99999999999999999999",
		"123456789012345678901234567890123",
	} {
		t.Run(have, func(t *testing.T) {
			v, err := ParseVersion(have)
			if err == nil {
				t.Fatalf("ParseVersion(%q) = %v, want an error", have, v)
			}
			if !errors.Is(err, ErrBadVersion) {
				t.Errorf("error %v does not wrap ErrBadVersion", err)
			}
		})
	}
}

func TestVersionCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"14.7.10", "14.7.9", 1},
		{"14.7.9", "14.7.10", -1},
		{"15", "15.0", 0},
		{"15", "15.0.0", 0},
		{"15.0", "15.0.0", 0},
		{"15.0.1", "15", 1},
		{"26.0", "15.7.9", 1},
		{"15.7", "15.10", -1},
		{"11.7.11", "12.0", -1},
	}
	for _, tt := range tests {
		a, b := MustParseVersion(tt.a), MustParseVersion(tt.b)
		if got := a.Compare(b); got != tt.want {
			t.Errorf("%s.Compare(%s) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := b.Compare(a); got != -tt.want {
			t.Errorf("%s.Compare(%s) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
		if got := a.Less(b); got != (tt.want < 0) {
			t.Errorf("%s.Less(%s) = %v", tt.a, tt.b, got)
		}
		if (a == b) != (tt.want == 0) {
			t.Errorf("%s == %s is %v, want %v", tt.a, tt.b, a == b, tt.want == 0)
		}
	}
}

func TestVersionJSON(t *testing.T) {
	type doc struct {
		V Version `json:"v"`
	}
	tests := []struct {
		have string
		want Version
	}{
		{`{"v":"15.7.9"}`, NewVersion(15, 7, 9)},
		{`{"v":"15"}`, NewVersion(15, 0, 0)},
		{`{"v":""}`, Version{}},
	}
	for _, tt := range tests {
		var d doc
		if err := json.Unmarshal([]byte(tt.have), &d); err != nil {
			t.Fatalf("Unmarshal(%s): %v", tt.have, err)
		}
		if d.V != tt.want {
			t.Errorf("Unmarshal(%s) = %v, want %v", tt.have, d.V, tt.want)
		}
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		var back doc
		if err := json.Unmarshal(b, &back); err != nil || back != d {
			t.Errorf("round trip of %s through %s = %v, %v", tt.have, b, back, err)
		}
	}
	var d doc
	if err := json.Unmarshal([]byte(`{"v":"15.x"}`), &d); !errors.Is(err, ErrBadVersion) {
		t.Errorf("Unmarshal of a bad version: err = %v, want ErrBadVersion", err)
	}
}

func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"15", "15.0.0", "26.6.2", "14.7.10", "", "1.2.3.4", "a.b", "15.7.9 (a)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseVersion(s)
		if err != nil {
			if !errors.Is(err, ErrBadVersion) {
				t.Fatalf("error %v does not wrap ErrBadVersion", err)
			}
			return
		}
		if v.IsZero() {
			t.Fatalf("ParseVersion(%q) returned the zero version without error", s)
		}
		back, err := ParseVersion(v.String())
		if err != nil || back != v {
			t.Fatalf("ParseVersion(%q).String() = %q does not parse back: %v, %v", s, v.String(), back, err)
		}
	})
}

func BenchmarkParseVersion(b *testing.B) {
	for b.Loop() {
		if _, err := ParseVersion("14.7.10"); err != nil {
			b.Fatal(err)
		}
	}
}
