// Package catalog is Sundial's macOS release catalog: what Apple has
// released, when it was posted, which hardware can install it, and what it
// fixes. It parses Apple's software lookup service (gdmf v2/pmv) and the SOFA
// v1 and v2 macOS feeds, merges them with releases an admin added by hand,
// and answers the queries target resolution needs.
//
// The catalog is pure data: it does no I/O except reading the io.Reader it is
// given, and it ships a built-in snapshot (Default) for offline use.
package catalog

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// ErrExists is returned by Add when the catalog already holds the release.
var ErrExists = errors.New("release already in catalog")

// Catalog is a set of macOS releases. It is safe for concurrent use: readers
// never block (they work on an immutable snapshot) and writers (Add, Merge)
// copy on write. The zero Catalog is empty and ready to use.
type Catalog struct {
	mu   sync.Mutex // serializes writers
	snap atomic.Pointer[snapshot]
	asOf atomic.Int64 // unix nanos of when Apple's feed last confirmed the data; 0: unknown
}

// snapshot is one immutable state of a Catalog.
type snapshot struct {
	releases      []Release           // regular releases, ascending by Version, one per version
	versions      []Version           // releases[i].Version, for cache-friendly searches
	supplemental  []Release           // RSR/BSI releases, ascending by (Version, VersionExtra)
	boardsByModel map[string][]string // model identifier ("Mac14,2") -> board IDs, from SOFA v2
	boardSpelling map[string]string   // upper-cased board ID -> Apple's spelling
	boards        *boardTable         // interned board IDs of all releases
	majorBits     map[int][]uint64    // major -> boards of any of its releases or of the newest release
}

var emptySnapshot = &snapshot{}

// releaseKey identifies a release within a catalog.
type releaseKey struct {
	v            Version
	extra        string
	supplemental bool
}

func keyOf(r *Release) releaseKey {
	return releaseKey{v: r.Version, extra: r.VersionExtra, supplemental: r.Supplemental}
}

// New returns a catalog holding the given releases, added as manual
// releases with Add's validation.
func New(releases ...Release) (*Catalog, error) {
	c := &Catalog{}
	for _, r := range releases {
		if err := c.Add(r); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Catalog) load() *snapshot {
	if c == nil {
		return emptySnapshot
	}
	if s := c.snap.Load(); s != nil {
		return s
	}
	return emptySnapshot
}

// Clone returns an independent catalog with the same releases.
func (c *Catalog) Clone() *Catalog {
	n := &Catalog{}
	n.snap.Store(c.load())
	n.asOf.Store(c.asOf.Load())
	return n
}

// Len returns the number of releases, supplemental ones included.
func (c *Catalog) Len() int {
	s := c.load()
	return len(s.releases) + len(s.supplemental)
}

// Releases returns the regular (non-supplemental) releases, oldest first.
func (c *Catalog) Releases() []Release {
	return slices.Clone(c.load().releases)
}

// Supplementals returns the Rapid Security Responses and Background
// Security Improvements, oldest first.
func (c *Catalog) Supplementals() []Release {
	return slices.Clone(c.load().supplemental)
}

// Lookup returns the regular release with exactly version v (15 finds 15.0).
func (c *Catalog) Lookup(v Version) (Release, bool) {
	s := c.load()
	i, ok := s.search(v)
	if !ok {
		return Release{}, false
	}
	return s.releases[i], true
}

// search finds v among the regular releases: its index, or where it would go.
func (s *snapshot) search(v Version) (int, bool) {
	return slices.BinarySearchFunc(s.versions, v, Version.Compare)
}

// Newer returns the regular releases strictly newer than v, oldest first.
// It does not allocate: the result is a view of the catalog's current
// snapshot and must not be modified. This is the hot path of target
// resolution.
func (c *Catalog) Newer(v Version) []Release {
	s := c.load()
	i, found := s.search(v)
	if found {
		i++
	}
	return s.releases[i:]
}

// Latest returns the newest regular release that the board ID supports; an
// empty board ID matches every release.
func (c *Catalog) Latest(boardID string) (Release, bool) {
	rs := c.load().releases
	for i := len(rs) - 1; i >= 0; i-- {
		if boardID == "" || rs[i].Supports(boardID) {
			return rs[i], true
		}
	}
	return Release{}, false
}

// LatestInMajor returns the newest regular release of the given major
// version that the board ID supports; an empty board ID matches every release.
func (c *Catalog) LatestInMajor(boardID string, major int) (Release, bool) {
	rs := c.Major(major)
	for i := len(rs) - 1; i >= 0; i-- {
		if boardID == "" || rs[i].Supports(boardID) {
			return rs[i], true
		}
	}
	return Release{}, false
}

// Major returns the regular releases of one major version, oldest first.
// Like Newer it does not allocate and the result must not be modified.
func (c *Catalog) Major(major int) []Release {
	s := c.load()
	start, _ := s.search(NewVersion(major, 0, 0))
	end, _ := s.search(NewVersion(major+1, 0, 0))
	return s.releases[start:end]
}

// BoardIDsForModel returns the board IDs SOFA knows for a model identifier
// such as "MacBookPro15,2" (some Intel models have two). It is the fallback
// when a device has not reported its SoftwareUpdateDeviceID. The result must
// not be modified.
func (c *Catalog) BoardIDsForModel(model string) []string {
	return c.load().boardsByModel[model]
}

// CanonicalBoardID returns Apple's spelling of a board ID matched without
// regard to case ("j314cap" gives "J314cAP"), and whether the catalog knows
// it. Call it once when a device reports its ID, not per evaluation.
func (c *Catalog) CanonicalBoardID(boardID string) (string, bool) {
	s, ok := c.load().boardSpelling[strings.ToUpper(boardID)]
	if !ok {
		return boardID, false
	}
	return s, true
}

// Add validates r and adds it as a manual release. Board IDs must be
// well-formed; an empty SupportedDevices list inherits the list of the
// newest regular release of the same major version (an error if there is
// none). Adding a release that is already present returns an error wrapping
// ErrExists and changes nothing.
func (c *Catalog) Add(r Release) error {
	r.SupportedDevices = slices.Clone(r.SupportedDevices)
	r.AllBuilds = slices.Clone(r.AllBuilds)
	r.ActivelyExploitedCVEs = slices.Clone(r.ActivelyExploitedCVEs)
	r.Sources = SourceManual
	if err := r.validate(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := c.load()
	k := keyOf(&r)
	if _, ok := cur.index()[k]; ok {
		return fmt.Errorf("%w: %s", ErrExists, r.Name())
	}
	if len(r.SupportedDevices) == 0 {
		prev, ok := c.LatestInMajor("", r.Version.Major())
		if !ok {
			return fmt.Errorf("%w: %s: supported devices are required (no macOS %d release to inherit them from)",
				ErrInvalidRelease, r.Version, r.Version.Major())
		}
		r.SupportedDevices = slices.Clone(prev.SupportedDevices)
	}
	r.normalize()
	m := cur.index()
	m[k] = r
	c.snap.Store(buildSnapshot(m, cur.boardsByModel, cur.boards))
	return nil
}

// Merge folds the releases of others into c. A release listed by several
// sources becomes one release: gdmf wins for build, expiration date and
// supported devices (several gdmf entries combine: latest expiration, union
// of devices); the posting date is the earliest date any source says Apple
// published the release (gdmf re-posts old releases with new dates); SOFA
// contributes release dates and CVE data; manual releases fill in what the
// feeds lack. The result does not depend on the order of merging.
func (c *Catalog) Merge(others ...*Catalog) { c.MergeCount(others...) }

// MergeCount is Merge, and says how many releases were new to c and how
// many it already had changed (a new build, date, device or CVE).
func (c *Catalog) MergeCount(others ...*Catalog) (added, changed int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := c.load()
	m := cur.index()
	before := cur.index()
	models := cloneModels(cur.boardsByModel)
	for _, o := range others {
		s := o.load()
		for _, list := range [][]Release{s.releases, s.supplemental} {
			for _, r := range list {
				k := keyOf(&r)
				if have, ok := m[k]; ok {
					m[k] = mergeRelease(have, r)
				} else {
					m[k] = r
				}
			}
		}
		for model, boards := range s.boardsByModel {
			models[model] = sortedSet(append(slices.Clone(models[model]), boards...))
		}
	}
	for k, r := range m {
		if old, ok := before[k]; !ok {
			added++
		} else if !sameRelease(&old, &r) {
			changed++
		}
	}
	c.snap.Store(buildSnapshot(m, models, cur.boards))
	return added, changed
}

// index returns a fresh map of the snapshot's releases by key.
func (s *snapshot) index() map[releaseKey]Release {
	m := make(map[releaseKey]Release, len(s.releases)+len(s.supplemental))
	for _, list := range [][]Release{s.releases, s.supplemental} {
		for _, r := range list {
			m[keyOf(&r)] = r
		}
	}
	return m
}

func cloneModels(m map[string][]string) map[string][]string {
	out := make(map[string][]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// buildSnapshot sorts the releases into a new immutable snapshot, interning
// board IDs in prev extended with any new ones.
func buildSnapshot(m map[releaseKey]Release, models map[string][]string, prev *boardTable) *snapshot {
	s := &snapshot{boardsByModel: models, boardSpelling: map[string]string{}}
	all := map[string]struct{}{}
	for _, r := range m {
		if r.Supplemental {
			s.supplemental = append(s.supplemental, r)
		} else {
			s.releases = append(s.releases, r)
		}
		for _, b := range r.SupportedDevices {
			all[b] = struct{}{}
		}
	}
	for _, boards := range models {
		for _, b := range boards {
			all[b] = struct{}{}
		}
	}
	for b := range all {
		s.boardSpelling[strings.ToUpper(b)] = b
	}
	s.boards = prev.extend(all)
	for _, list := range [][]Release{s.releases, s.supplemental} {
		for i := range list {
			list[i].boards = s.boards
			list[i].boardBits = s.boards.bits(list[i].SupportedDevices)
		}
	}
	slices.SortFunc(s.releases, func(a, b Release) int { return a.Version.Compare(b.Version) })
	slices.SortFunc(s.supplemental, func(a, b Release) int {
		if c := a.Version.Compare(b.Version); c != 0 {
			return c
		}
		return cmp.Compare(a.VersionExtra, b.VersionExtra)
	})
	s.versions = make([]Version, len(s.releases))
	for i, r := range s.releases {
		s.versions[i] = r.Version
	}
	s.majorBits = majorUnion(s.releases)
	return s
}

// majorUnion ORs, per major version, the board bitsets of all its regular
// releases and of the newest regular release. Feeds sometimes list fewer
// devices for one release than for its siblings (SOFA's macOS 15.4 lacks the
// M1 and M2 MacBook Airs that 15.7.9 lists), so one release's list alone
// wrongly calls a Mac unsupported.
func majorUnion(releases []Release) map[int][]uint64 {
	if len(releases) == 0 {
		return nil
	}
	newest := releases[len(releases)-1].boardBits
	out := map[int][]uint64{}
	for i := range releases {
		m := releases[i].Version.Major()
		u, ok := out[m]
		if !ok {
			u = slices.Clone(newest)
		}
		for w, bits := range releases[i].boardBits {
			u[w] |= bits
		}
		out[m] = u
	}
	return out
}

// MajorSupports reports whether the board appears in the supported-device
// list of any regular release of the given major version, or of the newest
// regular release. A Mac already running that major can install all of its
// later releases (Apple does not drop hardware within a major), so target
// resolution asks this before declaring such a Mac unsupported.
func (c *Catalog) MajorSupports(major int, b BoardRef) bool {
	s := c.load()
	idx := b.idx
	if b.tab != s.boards {
		i, ok := s.boards.lookup(b.id)
		if !ok {
			return false
		}
		idx = i
	}
	if idx < 0 {
		return false
	}
	u := s.majorBits[major]
	w := int(idx / 64)
	return w < len(u) && u[w]&(1<<(idx%64)) != 0
}

// mergeRelease combines two records of the same release. It is commutative.
func mergeRelease(a, b Release) Release {
	aG, bG := a.Sources&SourceGDMF != 0, b.Sources&SourceGDMF != 0
	if bG && !aG {
		a, b = b, a // a is the authority for the Apple fields
	}
	out := a
	if aG == bG { // equals: combine the Apple fields
		out.Build = maxString(a.Build, b.Build)
		out.PrerequisiteBuild = maxString(a.PrerequisiteBuild, b.PrerequisiteBuild)
		if b.ExpirationDate.After(a.ExpirationDate) {
			out.ExpirationDate = b.ExpirationDate
		}
		out.SupportedDevices = sortedSet(append(slices.Clone(a.SupportedDevices), b.SupportedDevices...))
	}
	// Builds not in the authority still happened (SOFA's AllBuilds).
	out.AllBuilds = sortedSet(append(slices.Clone(a.AllBuilds), b.AllBuilds...))
	out.PostingDate = earliest(a.PostingDate, b.PostingDate)
	out.ReleaseDate = earliest(a.ReleaseDate, b.ReleaseDate)
	out.CVECount = max(a.CVECount, b.CVECount)
	out.ActivelyExploitedCVEs = sortedSet(append(slices.Clone(a.ActivelyExploitedCVEs), b.ActivelyExploitedCVEs...))
	out.SecurityInfo = minNonEmpty(a.SecurityInfo, b.SecurityInfo)
	out.Sources = a.Sources | b.Sources
	out.sorted = true
	return out
}

func maxString(a, b string) string {
	if b > a {
		return b
	}
	return a
}

func minNonEmpty(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "" || a < b:
		return a
	}
	return b
}
