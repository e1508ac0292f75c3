package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func day(s string) time.Time {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return d
}

func mustParse(t testing.TB, parse func(io.Reader) (*Catalog, error), path string) *Catalog {
	t.Helper()
	c, err := parse(bytes.NewReader(readFile(t, path)))
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return c
}

// TestParseGDMFSnapshot checks the parser against an independent reading
// of the same document with generic JSON decoding.
func TestParseGDMFSnapshot(t *testing.T) {
	raw := readFile(t, "snapshot/gdmf-v2-pmv.json")
	c, err := ParseGDMF(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]map[string][]map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	type want struct {
		posted  string
		devices map[string]bool
	}
	regular, supplemental := map[string]*want{}, map[string]bool{}
	for set, platforms := range doc {
		for _, e := range platforms["macOS"] {
			v := e["ProductVersion"].(string)
			if set == "PublicBackgroundSecurityImprovements" {
				supplemental[v+" "+e["ProductVersionExtra"].(string)] = true
				continue
			}
			w := regular[v]
			if w == nil {
				w = &want{posted: "9999", devices: map[string]bool{}}
				regular[v] = w
			}
			w.posted = min(w.posted, e["PostingDate"].(string))
			for _, d := range e["SupportedDevices"].([]any) {
				w.devices[d.(string)] = true
			}
		}
	}
	if got := len(c.Releases()); got != len(regular) {
		t.Errorf("regular releases = %d, want %d", got, len(regular))
	}
	if got := len(c.Supplementals()); got != len(supplemental) {
		t.Errorf("supplemental releases = %d, want %d", got, len(supplemental))
	}
	for v, w := range regular {
		r, ok := c.Lookup(MustParseVersion(v))
		if !ok {
			t.Errorf("Lookup(%s): missing", v)
			continue
		}
		if got := r.PostingDate.Format(time.DateOnly); got != w.posted {
			t.Errorf("%s posting date = %s, want the earliest %s", v, got, w.posted)
		}
		if len(r.SupportedDevices) != len(w.devices) {
			t.Errorf("%s supported devices = %d, want %d", v, len(r.SupportedDevices), len(w.devices))
		}
		for d := range w.devices {
			if !r.Supports(d) {
				t.Errorf("%s does not support %s", v, d)
			}
		}
		if r.Sources != SourceGDMF || r.Supplemental || r.Build == "" {
			t.Errorf("%s: sources %v, supplemental %v, build %q", v, r.Sources, r.Supplemental, r.Build)
		}
	}
	for _, r := range c.Supplementals() {
		if !supplemental[r.Version.String()+" "+r.VersionExtra] || r.PrerequisiteBuild == "" {
			t.Errorf("unexpected supplemental %s (prerequisite %q)", r.Name(), r.PrerequisiteBuild)
		}
	}
}

func TestParseGDMFSmall(t *testing.T) {
	c := mustParse(t, ParseGDMF, "testdata/gdmf-small.json")
	tests := []struct {
		version    string
		build      string
		posted     string // earliest of PublicAssetSets and AssetSets
		expires    string
		supports   string
		unsupports string
	}{
		{"26.6.2", "25G83", "2026-08-17", "2026-11-20", "J413AP", "J132AP"},
		{"26.6.1", "25G76", "2026-08-06", "2026-11-15", "J413AP", "J132AP"},
		{"15.7.9", "24G830", "2026-08-06", "2026-11-20", "J132AP", "iPad11,1"},
		{"14.8.9", "23J631", "2026-08-06", "2026-11-20", "J413AP", "J000AP"},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			r, ok := c.Lookup(MustParseVersion(tt.version))
			if !ok {
				t.Fatalf("Lookup(%s): missing", tt.version)
			}
			if r.Build != tt.build || !r.PostingDate.Equal(day(tt.posted)) || !r.ExpirationDate.Equal(day(tt.expires)) {
				t.Errorf("got build %s posted %s expires %s, want %s %s %s", r.Build,
					r.PostingDate.Format(time.DateOnly), r.ExpirationDate.Format(time.DateOnly), tt.build, tt.posted, tt.expires)
			}
			if !r.Supports(tt.supports) || r.Supports(tt.unsupports) {
				t.Errorf("Supports(%s) = %v, Supports(%s) = %v", tt.supports, r.Supports(tt.supports), tt.unsupports, r.Supports(tt.unsupports))
			}
		})
	}
	// iOS entries are ignored.
	if _, ok := c.Lookup(MustParseVersion("26.6.1")); !ok {
		t.Fatal("26.6.1 missing")
	}
	sup := c.Supplementals()
	if len(sup) != 2 {
		t.Fatalf("supplementals = %d, want 2", len(sup))
	}
	for _, r := range sup {
		if !r.Supplemental || r.VersionExtra != "(a)" {
			t.Errorf("%s: supplemental %v extra %q", r.Name(), r.Supplemental, r.VersionExtra)
		}
	}
}

// bigReader yields n bytes: spaces, then a closing brace.
type bigReader struct{ n int64 }

var spaces = []byte(strings.Repeat(" ", 64<<10))

func (b *bigReader) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(int64(len(p)), b.n)], spaces)
	b.n -= int64(k)
	if b.n == 0 && k > 0 {
		p[k-1] = '}'
	}
	return k, nil
}

// gdmfJSON is a one-entry gdmf document.
func gdmfJSON(version, posted, devices string) string {
	return `{"PublicAssetSets":{"macOS":[{"ProductVersion":"` + version + `","Build":"25G83","PostingDate":"` + posted +
		`","ExpirationDate":"2026-11-20","SupportedDevices":[` + devices + `]}]}}`
}

func TestParseGDMFRejects(t *testing.T) {
	tests := []struct {
		name string
		have io.Reader
		want string // in the error message
	}{
		{"empty", strings.NewReader(""), "empty document"},
		{"null", strings.NewReader("null"), "not a JSON object"},
		{"array", strings.NewReader("[]"), "not a JSON object"},
		{"html", strings.NewReader("<html>502 Bad Gateway</html>"), "not a JSON object"},
		{"no sets", strings.NewReader(`{"foo":1}`), "no PublicAssetSets or AssetSets"},
		{"no macOS", strings.NewReader(`{"PublicAssetSets":{"iOS":[]}}`), "no macOS releases"},
		{"trailing", strings.NewReader(gdmfJSON("26.6.2", "2026-08-17", `"J413AP"`) + `{}`), "trailing data"},
		{"truncated", strings.NewReader(gdmfJSON("26.6.2", "2026-08-17", `"J413AP"`)[:60]), "decode"},
		{"wrong type", strings.NewReader(`{"PublicAssetSets":{"macOS":{"a":1}}}`), "decode"},
		{"bad version", strings.NewReader(gdmfJSON("26.x", "2026-08-17", `"J413AP"`)), "PublicAssetSets.macOS[0]: ProductVersion"},
		{"ios version as macOS", strings.NewReader(gdmfJSON("4.2", "2026-08-17", `"J413AP"`)), "not a macOS version"},
		{"bad date", strings.NewReader(gdmfJSON("26.6.2", "17/08/2026", `"J413AP"`)), "PostingDate"},
		{"no date", strings.NewReader(gdmfJSON("26.6.2", "", `"J413AP"`)), "posting date is required"},
		{"bad board", strings.NewReader(gdmfJSON("26.6.2", "2026-08-17", `"J413AP","<script>"`)), "malformed board ID"},
		{"empty board", strings.NewReader(gdmfJSON("26.6.2", "2026-08-17", `""`)), "malformed board ID"},
		{"too big", &bigReader{n: MaxGDMFSize + 1}, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseGDMF(tt.have)
			if err == nil {
				t.Fatalf("ParseGDMF = %d releases, want an error containing %q", c.Len(), tt.want)
			}
			if !errors.Is(err, ErrFeed) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want ErrFeed containing %q", err, tt.want)
			}
			var fe *FeedError
			if !errors.As(err, &fe) || fe.Feed != "gdmf" {
				t.Errorf("error %v is not a gdmf *FeedError", err)
			}
		})
	}
}

func TestParseSOFAV2Small(t *testing.T) {
	c := mustParse(t, ParseSOFAV2, "testdata/sofa-v2-small.json")
	r, ok := c.Lookup(MustParseVersion("26.6.1"))
	if !ok {
		t.Fatal("26.6.1 missing")
	}
	if !slices.Equal(r.ActivelyExploitedCVEs, []string{"CVE-2026-65400"}) || r.CVECount != 1 {
		t.Errorf("26.6.1 CVEs: count %d exploited %v, want 1 [CVE-2026-65400]", r.CVECount, r.ActivelyExploitedCVEs)
	}
	if !r.ReleaseDate.Equal(day("2026-08-06")) || !r.PostingDate.Equal(r.ReleaseDate) || r.Sources != SourceSOFA {
		t.Errorf("26.6.1 release %v posting %v sources %v", r.ReleaseDate, r.PostingDate, r.Sources)
	}
	// The 26.6.2 security release has no SupportedDevices: it inherits Latest's.
	latest, _ := c.Lookup(MustParseVersion("26.6.2"))
	if !latest.Supports("J413AP") || !latest.Supports("J152FAP") {
		t.Errorf("26.6.2 devices = %v, want Latest's list", latest.SupportedDevices)
	}
	if got := c.BoardIDsForModel("Mac14,2"); !slices.Equal(got, []string{"J413AP"}) {
		t.Errorf("BoardIDsForModel(Mac14,2) = %v", got)
	}
	sup := c.Supplementals()
	if len(sup) != 1 || sup[0].Name() != "macOS 26.3.2 (a)" || !sup[0].Supports("J700AP") {
		t.Errorf("supplementals = %+v", sup)
	}
}

func TestParseSOFAV1Small(t *testing.T) {
	c := mustParse(t, ParseSOFAV1, "testdata/sofa-v1-small.json")
	r, ok := c.Lookup(MustParseVersion("15.7.9"))
	if !ok {
		t.Fatal("15.7.9 missing")
	}
	if len(r.ActivelyExploitedCVEs) != 1 || r.Build != "24G830" {
		t.Errorf("15.7.9: exploited %v build %q", r.ActivelyExploitedCVEs, r.Build)
	}
}

// TestSOFAV1AgreesWithV2 reads the two feeds, two encodings of the same
// data, and checks that they agree.
func TestSOFAV1AgreesWithV2(t *testing.T) {
	v1 := mustParse(t, ParseSOFAV1, "testdata/sofa-v1-macos_data_feed.json")
	v2 := mustParse(t, ParseSOFAV2, "snapshot/sofa-v2-macos_data_feed.json")
	r1, r2 := v1.Releases(), v2.Releases()
	if len(r1) == 0 || len(r1) != len(r2) {
		t.Fatalf("v1 has %d releases, v2 %d", len(r1), len(r2))
	}
	for i := range r1 {
		a, b := r1[i], r2[i]
		if a.Version != b.Version || !a.ReleaseDate.Equal(b.ReleaseDate) || a.CVECount != b.CVECount ||
			!slices.Equal(a.ActivelyExploitedCVEs, b.ActivelyExploitedCVEs) {
			t.Errorf("v1 %s %s %d %v != v2 %s %s %d %v", a.Version, a.ReleaseDate.Format(time.DateOnly), a.CVECount, a.ActivelyExploitedCVEs,
				b.Version, b.ReleaseDate.Format(time.DateOnly), b.CVECount, b.ActivelyExploitedCVEs)
		}
		// Device lists legitimately differ: v1 repeats the newest release's
		// list on old releases, v2 keeps each release's own. v2's is never larger.
		if len(b.SupportedDevices) == 0 || len(b.SupportedDevices) > len(a.SupportedDevices) {
			t.Errorf("%s: v1 has %d devices, v2 %d", a.Version, len(a.SupportedDevices), len(b.SupportedDevices))
		}
	}
}

func TestParseSOFARejects(t *testing.T) {
	v1 := string(readFile(t, "testdata/sofa-v1-small.json"))
	v2 := string(readFile(t, "testdata/sofa-v2-small.json"))
	tests := []struct {
		name  string
		parse func(io.Reader) (*Catalog, error)
		have  string
		want  string
	}{
		{"v2 given to v1", ParseSOFAV1, v2, "SOFA v2 feed"},
		{"v1 given to v2", ParseSOFAV2, v1, "not 2.x"},
		{"no OSVersions", ParseSOFAV2, `{"Version":"2.0","OSVersions":[]}`, "no OSVersions"},
		{"bad CVE", ParseSOFAV2, strings.Replace(v2, "CVE-2026-65400", "CVE-<b>", 1), "malformed CVE ID"},
		{"bad exploited CVE", ParseSOFAV1, strings.Replace(v1, `"ActivelyExploitedCVEs": [
          "CVE-2026-65400"`, `"ActivelyExploitedCVEs": [
          "not a cve"`, 1), "malformed CVE ID"},
		{"bad release date", ParseSOFAV2, strings.Replace(v2, "2026-08-06T00:00:00Z", "yesterday", 1), "ReleaseDate"},
		{"missing release date", ParseSOFAV2, strings.Replace(v2, `"ReleaseDate": "2026-08-06T00:00:00Z",`, "", 1), "ReleaseDate is required"},
		{"bad version", ParseSOFAV1, strings.Replace(v1, `"15.7.9"`, `"15.7.9.1"`, 1), "ProductVersion"},
		{"bad device map", ParseSOFAV2, strings.Replace(v2, `"DeviceID": "Mac14,2"`, `"DeviceID": "Mac 14"`, 1), "malformed device entry"},
		{"wrong CVE shape", ParseSOFAV1, strings.Replace(v1, `"CVE-2026-65400": true`, `"CVE-2026-65400": {}`, 1), "decode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name != "v2 given to v1" && tt.name != "v1 given to v2" && tt.name != "no OSVersions" && (tt.have == v1 || tt.have == v2) {
				t.Fatal("the replacement did not change the fixture")
			}
			_, err := tt.parse(strings.NewReader(tt.have))
			if err == nil || !errors.Is(err, ErrFeed) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want ErrFeed containing %q", err, tt.want)
			}
		})
	}
	// The cap itself, at a size cheap enough to test for every feed.
	for _, n := range []int64{1024, 1025} {
		_, err := readCapped(&bigReader{n: n}, 1024, "sofa v2")
		if tooBig := err != nil && strings.Contains(err.Error(), "larger than 1024 bytes"); tooBig != (n > 1024) {
			t.Errorf("readCapped of %d bytes with limit 1024: err = %v", n, err)
		}
	}
}

// checkCatalog asserts the invariants every parsed catalog must hold.
func checkCatalog(t *testing.T, c *Catalog) {
	for _, list := range [][]Release{c.Releases(), c.Supplementals()} {
		for i, r := range list {
			if err := r.validate(); err != nil {
				t.Fatalf("parsed release fails validation: %v", err)
			}
			if !slices.IsSorted(r.SupportedDevices) {
				t.Fatalf("%s: devices not sorted", r.Name())
			}
			if i > 0 && r.Version.Less(list[i-1].Version) {
				t.Fatalf("releases out of order: %s after %s", r.Version, list[i-1].Version)
			}
		}
	}
}

func fuzzFeed(f *testing.F, parse func(io.Reader) (*Catalog, error), seeds ...string) {
	for _, s := range seeds {
		f.Add(readFile(f, s))
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"PublicAssetSets":{"macOS":[{"ProductVersion":"15","PostingDate":"2026-01-01","SupportedDevices":["J1AP"]}]}}`))
	f.Add([]byte(`{"Version":"2.0","OSVersions":[{"Latest":{"ProductVersion":"15.1 (a)","ReleaseDate":"2026-01-01"}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parse(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, ErrFeed) {
				t.Fatalf("error %v does not wrap ErrFeed", err)
			}
			return
		}
		if c.Len() == 0 {
			t.Fatal("parse succeeded with no releases")
		}
		checkCatalog(t, c)
	})
}

func FuzzParseGDMF(f *testing.F) {
	fuzzFeed(f, ParseGDMF, "testdata/gdmf-small.json")
}

func FuzzParseSOFAV1(f *testing.F) {
	fuzzFeed(f, ParseSOFAV1, "testdata/sofa-v1-small.json")
}

func FuzzParseSOFAV2(f *testing.F) {
	fuzzFeed(f, ParseSOFAV2, "testdata/sofa-v2-small.json")
}

func BenchmarkParseGDMF(b *testing.B) {
	raw := readFile(b, "snapshot/gdmf-v2-pmv.json")
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := ParseGDMF(bytes.NewReader(raw)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseSOFAV2(b *testing.B) {
	raw := readFile(b, "snapshot/sofa-v2-macos_data_feed.json")
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := ParseSOFAV2(bytes.NewReader(raw)); err != nil {
			b.Fatal(err)
		}
	}
}
