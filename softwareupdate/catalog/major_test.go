package catalog

import "testing"

func TestMajorSupports(t *testing.T) {
	d := func(s string) Release {
		return Release{Version: MustParseVersion(s), PostingDate: day("2025-01-01")}
	}
	r150, r154, r157, r260 := d("15.0"), d("15.4"), d("15.7"), d("26.0")
	r150.SupportedDevices = []string{"J313AP", "J314sAP"}
	r154.SupportedDevices = []string{"J314sAP"}
	r157.SupportedDevices = []string{"J314sAP", "J413AP"}
	r260.SupportedDevices = []string{"J314sAP", "J613AP"}
	c, err := New(r150, r154, r157, r260)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		major int
		board string
		want  bool
	}{
		{15, "J313AP", true},  // listed by 15.0 only
		{15, "J413AP", true},  // listed by 15.7 only
		{15, "J613AP", true},  // listed by the newest release (26.0)
		{15, "J999AP", false}, // listed by nothing
		{26, "J313AP", false}, // 26 lists neither it nor the newest does
		{14, "J613AP", false}, // no macOS 14 release in the catalog: nothing to vouch
	} {
		if got := c.MajorSupports(tc.major, c.BoardRef(tc.board)); got != tc.want {
			t.Errorf("MajorSupports(%d, %s) = %v, want %v", tc.major, tc.board, got, tc.want)
		}
	}
	// A ref resolved before the catalog learnt new boards still answers.
	old := c.BoardRef("J413AP")
	r261 := d("26.1")
	r261.SupportedDevices = []string{"J414AP"}
	if err := c.Add(r261); err != nil {
		t.Fatal(err)
	}
	if !c.MajorSupports(15, old) || !c.MajorSupports(15, c.BoardRef("J414AP")) || c.MajorSupports(15, c.BoardRef("J613AP")) {
		t.Error("MajorSupports wrong after the catalog changed")
	}
	var empty Catalog
	if empty.MajorSupports(15, empty.BoardRef("J313AP")) {
		t.Error("empty catalog supports a board")
	}
}
