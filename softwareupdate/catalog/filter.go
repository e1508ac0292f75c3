package catalog

import (
	"slices"
	"time"
)

// SnapshotTaken is when the built-in snapshot (Default) was taken: the age
// of a catalog that has never synced counts from it.
var SnapshotTaken = time.Date(2026, 8, 22, 18, 9, 0, 0, time.UTC)

// PostedInFuture reports whether r's posting day has not begun anywhere on
// Earth at now. Posting dates are calendar days without a zone, so a day
// is only "in the future" once it is after tomorrow in UTC (the zones east
// of UTC reach tomorrow first).
func (r *Release) PostedInFuture(now time.Time) bool {
	return r.PostingDate.After(utcDay(now).AddDate(0, 0, 1))
}

// WithoutFuture returns a catalog of c's releases that are not
// PostedInFuture at now, and the releases it left out. A feed that lists a
// release before its posting date is wrong or forged: such a release would
// start automatic deadlines early, so it is refused until its day comes.
func (c *Catalog) WithoutFuture(now time.Time) (*Catalog, []Release) {
	s := c.load()
	m := s.index()
	var refused []Release
	for k, r := range m {
		if r.PostedInFuture(now) {
			refused = append(refused, r)
			delete(m, k)
		}
	}
	if len(refused) == 0 {
		return c, nil
	}
	out := &Catalog{}
	out.snap.Store(buildSnapshot(m, s.boardsByModel, s.boards))
	return out, refused
}

// Replace makes c hold exactly o's releases. It is how a catalog is rebuilt
// after a release is removed (merging only ever adds), while every holder
// of c sees the change.
func (c *Catalog) Replace(o *Catalog) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.snap.Store(o.load())
}

// sameRelease compares the data of two releases (not their board bitsets,
// which depend on the catalog state they were built in).
func sameRelease(a, b *Release) bool {
	return a.Version == b.Version && a.VersionExtra == b.VersionExtra && a.Build == b.Build &&
		slices.Equal(a.AllBuilds, b.AllBuilds) && a.PrerequisiteBuild == b.PrerequisiteBuild &&
		a.PostingDate.Equal(b.PostingDate) && a.ReleaseDate.Equal(b.ReleaseDate) && a.ExpirationDate.Equal(b.ExpirationDate) &&
		slices.Equal(a.SupportedDevices, b.SupportedDevices) && a.Supplemental == b.Supplemental &&
		a.CVECount == b.CVECount && slices.Equal(a.ActivelyExploitedCVEs, b.ActivelyExploitedCVEs) &&
		a.SecurityInfo == b.SecurityInfo && a.Sources == b.Sources
}
