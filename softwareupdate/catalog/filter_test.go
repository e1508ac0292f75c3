package catalog

import (
	"testing"
	"time"
)

func TestWithoutFuture(t *testing.T) {
	mk := func(ver, posted string) Release {
		return Release{Version: MustParseVersion(ver), PostingDate: day(posted), SupportedDevices: []string{"J413AP"}}
	}
	c, err := New(mk("15.4", "2025-03-31"), mk("15.5", "2025-04-02"), mk("15.6", "2025-04-03"))
	if err != nil {
		t.Fatal(err)
	}
	// At 2025-04-01 23:00 UTC it is already 2025-04-02 east of UTC, never 04-03.
	now := time.Date(2025, 4, 1, 23, 0, 0, 0, time.UTC)
	kept, refused := c.WithoutFuture(now)
	if len(refused) != 1 || refused[0].Version.String() != "15.6" {
		t.Fatalf("refused = %v, want 15.6 only", refused)
	}
	if _, ok := kept.Lookup(MustParseVersion("15.6")); ok || kept.Len() != 2 {
		t.Errorf("kept %d releases, 15.6 among them: %v", kept.Len(), ok)
	}
	if c.Len() != 3 {
		t.Errorf("WithoutFuture changed its receiver: %d releases", c.Len())
	}
	if k, r := c.WithoutFuture(now.AddDate(0, 0, 2)); k != c || r != nil {
		t.Error("nothing in the future: want the catalog itself")
	}
}

func TestMergeCountAndReplace(t *testing.T) {
	mk := func(ver string, devices ...string) Release {
		return Release{Version: MustParseVersion(ver), PostingDate: day("2025-04-01"), SupportedDevices: devices}
	}
	c, _ := New(mk("15.4", "J413AP"))
	same, _ := New(mk("15.4", "J413AP"))
	if a, ch := c.MergeCount(same); a != 0 || ch != 0 {
		t.Errorf("merging the same release: added %d, changed %d", a, ch)
	}
	more, _ := New(mk("15.4", "J313AP"), mk("15.5", "J413AP"))
	if a, ch := c.MergeCount(more); a != 1 || ch != 1 {
		t.Errorf("merging a new release and new devices: added %d, changed %d; want 1, 1", a, ch)
	}
	r, _ := c.Lookup(MustParseVersion("15.4"))
	if !r.Supports("J313AP") || !r.Supports("J413AP") {
		t.Errorf("merged devices = %v", r.SupportedDevices)
	}
	fresh, _ := New(mk("15.3", "J413AP"))
	c.Replace(fresh)
	if c.Len() != 1 {
		t.Errorf("after Replace: %d releases, want 1", c.Len())
	}
	if _, ok := c.Lookup(MustParseVersion("15.3")); !ok {
		t.Error("after Replace: 15.3 missing")
	}
}
