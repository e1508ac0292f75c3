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
	kept, future := c.WithoutFuture(now)
	if refused := future.Releases(); len(refused) != 1 || refused[0].Version.String() != "15.6" {
		t.Fatalf("refused = %v, want 15.6 only", refused)
	}
	if _, ok := kept.Lookup(MustParseVersion("15.6")); ok || kept.Len() != 2 {
		t.Errorf("kept %d releases, 15.6 among them: %v", kept.Len(), ok)
	}
	if c.Len() != 3 {
		t.Errorf("WithoutFuture changed its receiver: %d releases", c.Len())
	}
	if k, f := c.WithoutFuture(now.AddDate(0, 0, 2)); k != c || f != nil {
		t.Error("nothing in the future: want the catalog itself")
	}
	// The held-back release is admitted once its day has come.
	due, later := future.WithoutFuture(now.AddDate(0, 0, 1))
	if later != nil || due.Len() != 1 {
		t.Errorf("a day later: %d admitted, still held back: %v", due.Len(), later != nil)
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

// TestExpiredAsOfFeed: expiration is judged as of the feed's last
// confirmation, so a stale copy does not expire Apple's current release.
func TestExpiredAsOfFeed(t *testing.T) {
	r := Release{Version: MustParseVersion("15.7.9"), PostingDate: day("2026-08-17"), ExpirationDate: day("2026-11-20"), SupportedDevices: []string{"J413AP"}}
	c, err := New(r)
	if err != nil {
		t.Fatal(err)
	}
	rel, _ := c.Lookup(r.Version)
	later := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	if !c.Expired(&rel, later) {
		t.Error("no AsOf: want expired at now")
	}
	c.SetAsOf(time.Date(2026, 8, 22, 0, 0, 0, 0, time.UTC))
	if c.Expired(&rel, later) {
		t.Error("data confirmed before the expiration date: want not expired")
	}
	c.SetAsOf(time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)) // never moves back
	if got := c.AsOf(); !got.Equal(time.Date(2026, 8, 22, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("AsOf = %v after an older SetAsOf", got)
	}
	c.SetAsOf(time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC))
	if !c.Expired(&rel, later) {
		t.Error("the feed confirmed after the expiration date: want expired")
	}
	if c.Clone().AsOf() != c.AsOf() {
		t.Error("Clone lost AsOf")
	}
	if !Default().AsOf().Equal(SnapshotTaken) {
		t.Errorf("Default AsOf = %v, want %v", Default().AsOf(), SnapshotTaken)
	}
}
