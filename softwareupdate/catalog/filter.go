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

// WithoutFuture splits c at now into the releases that are not
// PostedInFuture and those that are (nil if none). A feed that lists a
// release before its posting date is wrong or forged: such a release would
// start automatic deadlines early, so it is held back until its day comes
// (split the held-back catalog again then).
func (c *Catalog) WithoutFuture(now time.Time) (kept, future *Catalog) {
	s := c.load()
	m := s.index()
	later := map[releaseKey]Release{}
	for k, r := range m {
		if r.PostedInFuture(now) {
			later[k] = r
			delete(m, k)
		}
	}
	if len(later) == 0 {
		return c, nil
	}
	kept, future = &Catalog{}, &Catalog{}
	kept.snap.Store(buildSnapshot(m, s.boardsByModel, s.boards))
	future.snap.Store(buildSnapshot(later, nil, s.boards))
	return kept, future
}

// Replace makes c hold exactly o's releases (and o's AsOf). It is how a
// catalog is rebuilt after a release is removed (merging only ever adds),
// while every holder of c sees the change.
func (c *Catalog) Replace(o *Catalog) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.snap.Store(o.load())
	c.asOf.Store(o.asOf.Load())
}

// SetAsOf records when Apple's feed last confirmed the catalog's data (a
// successful gdmf check, or when the built-in snapshot was taken). It only
// moves forward.
func (c *Catalog) SetAsOf(t time.Time) {
	n := t.UnixNano()
	for {
		old := c.asOf.Load()
		if n <= old || c.asOf.CompareAndSwap(old, n) {
			return
		}
	}
}

// AsOf returns what SetAsOf recorded; zero if nothing was.
func (c *Catalog) AsOf() time.Time {
	if n := c.asOf.Load(); n != 0 {
		return time.Unix(0, n).UTC()
	}
	return time.Time{}
}

// Expired reports whether the feed marks r expired: its expiration date had
// passed when the feed last confirmed the data (AsOf), or at now if that is
// earlier or unknown. A stale catalog must not call Apple's current release
// expired only because the copy it holds is old: gdmf keeps extending the
// expiration of the releases it still offers.
func (c *Catalog) Expired(r *Release, now time.Time) bool {
	return r.Expired(c.ExpiryClock(now))
}

// ExpiryClock is the instant Expired judges expiration at: the earlier of
// now and AsOf. Loops compute it once and call Release.Expired.
func (c *Catalog) ExpiryClock(now time.Time) time.Time {
	if asOf := c.AsOf(); !asOf.IsZero() && asOf.Before(now) {
		return asOf
	}
	return now
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
