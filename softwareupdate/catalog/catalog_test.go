package catalog

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func snapshotFeeds(t testing.TB) (gdmf, sofa *Catalog) {
	return mustParse(t, ParseGDMF, "snapshot/gdmf-v2-pmv.json"), mustParse(t, ParseSOFAV2, "snapshot/sofa-v2-macos_data_feed.json")
}

func TestMergeGDMFAndSOFA(t *testing.T) {
	g, s := snapshotFeeds(t)
	c := g.Clone()
	c.Merge(s)

	tests := []struct {
		version     string
		wantSources Source
		wantBuild   string
		wantPosted  string // earliest of gdmf's posting dates and SOFA's release date
		wantCVEs    int
		wantExploit []string
	}{
		// In both feeds: gdmf build and devices, SOFA CVEs.
		{"26.6.1", SourceGDMF | SourceSOFA, "25G76", "2026-08-06", 1, []string{"CVE-2026-65400"}},
		// gdmf re-posted 14.8.9 on 2026-08-17 in PublicAssetSets; it first
		// appeared on 2026-08-06.
		{"14.8.9", SourceGDMF | SourceSOFA, "23J631", "2026-08-06", 1, []string{"CVE-2026-65400"}},
		// gdmf says 2026-05-18, SOFA says it was released on 2026-05-11.
		{"26.5", SourceGDMF | SourceSOFA, "25F71", "2026-05-11", 79, nil},
		// SOFA only: no build, posting date = release date.
		{"26.4", SourceSOFA, "", "2026-03-24", 86, nil},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			r, ok := c.Lookup(MustParseVersion(tt.version))
			if !ok {
				t.Fatal("missing")
			}
			if r.Sources != tt.wantSources || r.Build != tt.wantBuild || r.PostingDate.Format(time.DateOnly) != tt.wantPosted ||
				r.CVECount != tt.wantCVEs || !slices.Equal(r.ActivelyExploitedCVEs, tt.wantExploit) {
				t.Errorf("got sources %v build %q posted %s CVEs %d exploited %v, want %v %q %s %d %v",
					r.Sources, r.Build, r.PostingDate.Format(time.DateOnly), r.CVECount, r.ActivelyExploitedCVEs,
					tt.wantSources, tt.wantBuild, tt.wantPosted, tt.wantCVEs, tt.wantExploit)
			}
			if tt.wantSources&SourceGDMF != 0 {
				gr, _ := g.Lookup(r.Version)
				if !slices.Equal(r.SupportedDevices, gr.SupportedDevices) || !r.ExpirationDate.Equal(gr.ExpirationDate) {
					t.Errorf("gdmf fields not authoritative: %d devices (gdmf %d), expires %v (gdmf %v)",
						len(r.SupportedDevices), len(gr.SupportedDevices), r.ExpirationDate, gr.ExpirationDate)
				}
			}
		})
	}
	// Every release of either feed is in the merge.
	for _, src := range []*Catalog{g, s} {
		for _, r := range src.Releases() {
			if _, ok := c.Lookup(r.Version); !ok {
				t.Errorf("%s lost in merge", r.Version)
			}
		}
	}
	// The BSI listed by both feeds is one supplemental release.
	if got := len(c.Supplementals()); got != len(g.Supplementals()) {
		t.Errorf("supplementals = %d, want %d", got, len(g.Supplementals()))
	}
	checkCatalog(t, c)
}

func TestMergeOrderIndependent(t *testing.T) {
	g, s := snapshotFeeds(t)
	v1 := mustParse(t, ParseSOFAV1, "testdata/sofa-v1-macos_data_feed.json")
	orders := [][]*Catalog{{g, s, v1}, {v1, s, g}}
	var first *Catalog
	for i, order := range orders {
		c := &Catalog{}
		for _, o := range order {
			c.Merge(o)
		}
		if i == 0 {
			first = c
			continue
		}
		// Compare what callers see (the exported fields); board interning
		// indices legitimately depend on history.
		if exported(t, c) != exported(t, first) {
			t.Errorf("merge order %d gives a different catalog", i)
		}
	}
}

func exported(t *testing.T, c *Catalog) string {
	b, err := json.Marshal([][]Release{c.Releases(), c.Supplementals()})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSupportsRef checks the bitset fast path against the string search,
// including refs taken before the catalog changed.
func TestSupportsRef(t *testing.T) {
	c := Default()
	boards := []string{"J413AP", "J132AP", "VMM-x86_64", "Mac-1E7E29AD0135F9BC", "J999AP", "", "j413ap"}
	refs := make([]BoardRef, len(boards))
	for i, b := range boards {
		refs[i] = c.BoardRef(b)
	}
	check := func(when string) {
		for _, list := range [][]Release{c.Releases(), c.Supplementals()} {
			for _, r := range list {
				for i, b := range boards {
					fresh := c.BoardRef(b)
					if got, want := r.SupportsRef(refs[i]), r.Supports(b); got != want {
						t.Errorf("%s: %s SupportsRef(old %q) = %v, Supports = %v", when, r.Name(), b, got, want)
					}
					if got, want := r.SupportsRef(fresh), r.Supports(b); got != want {
						t.Errorf("%s: %s SupportsRef(%q) = %v, Supports = %v", when, r.Name(), b, got, want)
					}
				}
			}
		}
	}
	check("initially")
	// A release for a board the catalog has never seen makes a new table.
	if err := c.Add(Release{Version: MustParseVersion("26.6.3"), PostingDate: day("2026-09-01"), SupportedDevices: []string{"J999AP", "J413AP"}}); err != nil {
		t.Fatal(err)
	}
	check("after adding a board")
	// A release not from a catalog has no bitset.
	plain := Release{SupportedDevices: []string{"J413AP"}}
	if !plain.SupportsRef(refs[0]) || plain.SupportsRef(refs[1]) {
		t.Error("SupportsRef on a plain release")
	}
}

func TestQueries(t *testing.T) {
	c := Default()
	tests := []struct {
		name string
		got  func() (Release, bool)
		want string // version, or "" for not found
	}{
		{"lookup 15 finds 15.0", func() (Release, bool) { return c.Lookup(MustParseVersion("15")) }, "15.0"},
		{"lookup unknown", func() (Release, bool) { return c.Lookup(MustParseVersion("15.7.6")) }, ""},
		{"latest for Apple silicon", func() (Release, bool) { return c.Latest("J413AP") }, "26.6.2"},
		// The 2018 13-inch MacBook Pro cannot run Tahoe.
		{"latest for J132AP", func() (Release, bool) { return c.Latest("J132AP") }, "15.7.9"},
		{"latest for unknown board", func() (Release, bool) { return c.Latest("J999AP") }, ""},
		{"latest any board", func() (Release, bool) { return c.Latest("") }, "26.6.2"},
		{"latest in major 14", func() (Release, bool) { return c.LatestInMajor("J413AP", 14) }, "14.8.9"},
		{"latest in major 26 for J132AP", func() (Release, bool) { return c.LatestInMajor("J132AP", 26) }, ""},
		{"latest in unknown major", func() (Release, bool) { return c.LatestInMajor("", 27) }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok := tt.got()
			if ok != (tt.want != "") || (ok && r.Version.String() != tt.want) {
				t.Errorf("got %s, %v; want %q", r.Version, ok, tt.want)
			}
		})
	}
	newer := c.Newer(MustParseVersion("26.5.2"))
	var got []string
	for _, r := range newer {
		got = append(got, r.Version.String())
	}
	if want := []string{"26.6", "26.6.1", "26.6.2"}; !slices.Equal(got, want) {
		t.Errorf("Newer(26.5.2) = %v, want %v", got, want)
	}
	if n := len(c.Newer(MustParseVersion("26.6.2"))); n != 0 {
		t.Errorf("Newer(newest) has %d releases", n)
	}
	for _, r := range c.Major(14) {
		if r.Version.Major() != 14 {
			t.Errorf("Major(14) holds %s", r.Version)
		}
	}
	if got, ok := c.CanonicalBoardID("j314cap"); !ok || got != "J314cAP" {
		t.Errorf("CanonicalBoardID(j314cap) = %q, %v", got, ok)
	}
	if got := c.BoardIDsForModel("MacBookPro15,2"); len(got) != 2 {
		t.Errorf("BoardIDsForModel(MacBookPro15,2) = %v, want two boards", got)
	}
}

func TestAdd(t *testing.T) {
	posted := day("2026-09-10")
	valid := Release{Version: MustParseVersion("26.6.3"), Build: "25G90", PostingDate: posted, SupportedDevices: []string{"J413AP"}}
	tests := []struct {
		name string
		have func(r *Release)
		want string // error substring, "" for success
	}{
		{"valid", func(r *Release) {}, ""},
		{"inherits devices", func(r *Release) { r.SupportedDevices = nil }, ""},
		{"no version", func(r *Release) { r.Version = Version{} }, "version is required"},
		{"not macOS", func(r *Release) { r.Version = MustParseVersion("4.1") }, "not a macOS version"},
		{"no posting date", func(r *Release) { r.PostingDate = time.Time{} }, "posting date is required"},
		{"expires before posting", func(r *Release) { r.ExpirationDate = posted.AddDate(0, 0, -1) }, "before posting date"},
		{"bad board", func(r *Release) { r.SupportedDevices = []string{"J413AP", "J413 AP"} }, "malformed board ID"},
		{"bad build", func(r *Release) { r.Build = "25G90; rm" }, "malformed build"},
		{"extra without supplemental", func(r *Release) { r.VersionExtra = "(a)" }, "must be supplemental"},
		{"bad extra", func(r *Release) { r.VersionExtra = "a"; r.Supplemental = true }, "version extra"},
		{"exists", func(r *Release) { r.Version = MustParseVersion("26.6.2") }, "already in catalog"},
		{"nothing to inherit", func(r *Release) { r.Version = MustParseVersion("27.0"); r.SupportedDevices = nil }, "supported devices are required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			before := c.Len()
			r := valid
			r.SupportedDevices = slices.Clone(valid.SupportedDevices)
			tt.have(&r)
			err := c.Add(r)
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("Add: err = %v, want %q", err, tt.want)
				}
				if c.Len() != before {
					t.Errorf("failed Add changed the catalog: %d -> %d releases", before, c.Len())
				}
				return
			}
			if err != nil {
				t.Fatalf("Add: %v", err)
			}
			got, ok := c.Lookup(r.Version)
			if !ok || got.Sources != SourceManual || !got.Supports("J413AP") {
				t.Errorf("after Add: %+v, %v", got, ok)
			}
			if r.SupportedDevices == nil {
				prev, _ := c.Lookup(MustParseVersion("26.6.2"))
				if !slices.Equal(got.SupportedDevices, prev.SupportedDevices) {
					t.Errorf("inherited %d devices, want 26.6.2's %d", len(got.SupportedDevices), len(prev.SupportedDevices))
				}
			}
		})
	}
	if err := Default().Add(Release{Version: MustParseVersion("26.6.2"), PostingDate: posted, SupportedDevices: []string{"J413AP"}}); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate Add: err = %v, want ErrExists", err)
	}
}

func TestDefaultIsIndependent(t *testing.T) {
	a, b := Default(), Default()
	r := Release{Version: MustParseVersion("26.7"), PostingDate: day("2026-09-15"), SupportedDevices: []string{"J413AP"}}
	if err := a.Add(r); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Lookup(r.Version); ok {
		t.Error("Add on one Default catalog is visible in another")
	}
	if a.Len() != b.Len()+1 {
		t.Errorf("lengths %d and %d", a.Len(), b.Len())
	}
}

// TestConcurrentReadersAndWriters runs under -race.
func TestConcurrentReadersAndWriters(t *testing.T) {
	c := Default()
	s := mustParse(t, ParseSOFAV2, "testdata/sofa-v2-small.json")
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for range 200 {
				for _, r := range c.Newer(MustParseVersion("26.0")) {
					_ = r.Supports("J413AP")
				}
				c.Latest("J413AP")
			}
		})
		wg.Go(func() {
			v := NewVersion(27, i, 0)
			if err := c.Add(Release{Version: v, PostingDate: day("2026-10-01"), SupportedDevices: []string{"J413AP"}}); err != nil {
				t.Error(err)
			}
			c.Merge(s)
		})
	}
	wg.Wait()
	if got := len(c.Major(27)); got != 4 {
		t.Errorf("Major(27) = %d releases, want 4", got)
	}
}

func TestExpired(t *testing.T) {
	r := Release{ExpirationDate: day("2026-11-20")}
	tests := []struct {
		now  time.Time
		want bool
	}{
		{time.Date(2026, 11, 20, 23, 59, 0, 0, time.UTC), false},
		{time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), true},
	}
	for _, tt := range tests {
		if got := r.Expired(tt.now); got != tt.want {
			t.Errorf("Expired(%v) = %v, want %v", tt.now, got, tt.want)
		}
	}
	if (&Release{}).Expired(time.Now()) {
		t.Error("a release without expiration date expired")
	}
}

func BenchmarkNewerAndSupports(b *testing.B) {
	c := Default()
	v := MustParseVersion("26.3")
	for b.Loop() {
		n := 0
		for _, r := range c.Newer(v) {
			if r.Supports("J314cAP") {
				n++
			}
		}
		if n == 0 {
			b.Fatal("no supported release")
		}
	}
}

func TestReleaseJSONRoundTrip(t *testing.T) {
	c := Default()
	for _, r := range append(c.Releases(), c.Supplementals()...) {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var back Release
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		b2, _ := json.Marshal(back)
		if string(b) != string(b2) {
			t.Errorf("round trip changed %s into %s", b, b2)
		}
	}
	var s Source
	if err := s.UnmarshalText([]byte("gdmf+ftp")); err == nil {
		t.Error("unknown source accepted")
	}
}
