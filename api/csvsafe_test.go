package api

import "testing"

func TestCSVSafe(t *testing.T) {
	for _, tc := range []struct{ have, want string }{
		{`=HYPERLINK("http://evil.example","x")`, `'=HYPERLINK("http://evil.example","x")`},
		{"+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"},
		{"-2+3", "'-2+3"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\t=1", "'\t=1"},
		{"-3", "-3"},
		{"+1.5", "+1.5"},
		{"Jane's MacBook", "Jane's MacBook"},
		{"", ""},
		{"2026-12-07T06:00:00Z", "2026-12-07T06:00:00Z"},
	} {
		if have := csvSafe(tc.have); have != tc.want {
			t.Errorf("csvSafe(%q) = %q, want %q", tc.have, have, tc.want)
		}
	}
}
