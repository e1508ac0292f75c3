package catalog

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Source records where a release's data came from. A release merged from
// several feeds carries several bits.
type Source uint8

// Sources of release data.
const (
	// SourceGDMF is Apple's software lookup service (gdmf v2/pmv): the
	// authority on builds, posting and expiration dates and supported devices.
	SourceGDMF Source = 1 << iota
	// SourceSOFA is the SOFA feed (v1 or v2): release dates and CVE data.
	SourceSOFA
	// SourceManual is a release an admin added by hand.
	SourceManual
)

// String lists the sources, for example "gdmf+sofa".
func (s Source) String() string {
	var parts []string
	if s&SourceGDMF != 0 {
		parts = append(parts, "gdmf")
	}
	if s&SourceSOFA != 0 {
		parts = append(parts, "sofa")
	}
	if s&SourceManual != 0 {
		parts = append(parts, "manual")
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "+")
}

// MarshalText encodes the sources as String does ("gdmf+sofa").
func (s Source) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses what MarshalText produced.
func (s *Source) UnmarshalText(b []byte) error {
	var out Source
	for part := range strings.SplitSeq(string(b), "+") {
		switch part {
		case "gdmf":
			out |= SourceGDMF
		case "sofa":
			out |= SourceSOFA
		case "manual":
			out |= SourceManual
		case "none", "":
		default:
			return fmt.Errorf("unknown release source %q", truncate(part))
		}
	}
	*s = out
	return nil
}

// Release is one macOS release as the catalog knows it. Releases handed out
// by a Catalog share memory with it: treat them as read-only.
type Release struct {
	// Version is the product version, e.g. 26.6.2.
	Version Version `json:"version"`
	// VersionExtra is the supplemental suffix such as "(a)" for a Rapid
	// Security Response or Background Security Improvement; empty otherwise.
	VersionExtra string `json:"version_extra,omitempty"`
	// Build is the primary build, e.g. "25G83"; empty when unknown (SOFA
	// does not carry builds for older releases).
	Build string `json:"build,omitempty"`
	// AllBuilds lists every build seen for this version, sorted.
	AllBuilds []string `json:"all_builds,omitempty"`
	// PrerequisiteBuild is the build a supplemental update applies on top of.
	PrerequisiteBuild string `json:"prerequisite_build,omitempty"`
	// PostingDate is the day Apple published the release (UTC midnight):
	// the earliest of gdmf's PostingDate entries and SOFA's release date
	// (gdmf re-posts old releases with fresh dates). Automatic policies
	// count their delay from it.
	PostingDate time.Time `json:"posting_date"`
	// ReleaseDate is SOFA's release date (UTC midnight); zero when unknown.
	ReleaseDate time.Time `json:"release_date,omitzero"`
	// ExpirationDate is gdmf's ExpirationDate (UTC midnight); zero when unknown.
	ExpirationDate time.Time `json:"expiration_date,omitzero"`
	// SupportedDevices lists the board IDs (SoftwareUpdateDeviceID values)
	// that can install the release. Catalog releases keep it sorted.
	SupportedDevices []string `json:"supported_devices"`
	// Supplemental marks a Rapid Security Response or Background Security
	// Improvement. Supplemental releases are never enforced by default.
	Supplemental bool `json:"supplemental,omitempty"`
	// CVECount is the number of unique CVEs the release fixes (SOFA).
	CVECount int `json:"cve_count,omitempty"`
	// ActivelyExploitedCVEs lists fixed CVEs known to be exploited (SOFA), sorted.
	ActivelyExploitedCVEs []string `json:"actively_exploited_cves,omitempty"`
	// SecurityInfo is Apple's security-content page for the release (SOFA).
	SecurityInfo string `json:"security_info,omitempty"`
	// Sources records which feeds contributed.
	Sources Source `json:"sources"`

	sorted    bool        // SupportedDevices is sorted and deduplicated
	boards    *boardTable // the table boardBits indexes into; nil outside a catalog
	boardBits []uint64    // SupportedDevices as a bitset over boards
}

// Supports reports whether the device with the given board ID can install r.
// Board IDs are matched exactly, as Apple spells them in gdmf and in the
// device's SoftwareUpdateDeviceID (see Catalog.CanonicalBoardID).
func (r *Release) Supports(boardID string) bool {
	if r.sorted {
		_, ok := slices.BinarySearch(r.SupportedDevices, boardID)
		return ok
	}
	return slices.Contains(r.SupportedDevices, boardID)
}

// Name returns "macOS 26.6.2" or "macOS 26.3.1 (a)".
func (r *Release) Name() string {
	s := "macOS " + r.Version.String()
	if r.VersionExtra != "" {
		s += " " + r.VersionExtra
	}
	return s
}

// Expired reports whether the release's gdmf expiration date has passed at
// now (the whole expiration day still counts as valid).
func (r *Release) Expired(now time.Time) bool {
	// Expiration dates are UTC midnights, so the day ends 24 hours later;
	// Add is much cheaper than AddDate on the target-resolution hot path.
	return !r.ExpirationDate.IsZero() && !now.Before(r.ExpirationDate.Add(24*time.Hour))
}

// ErrInvalidRelease is wrapped by every release validation error.
var ErrInvalidRelease = errors.New("invalid release")

// maxBoardIDLen bounds one board ID; real ones are at most ~20 characters.
const maxBoardIDLen = 64

// validBoardID accepts the characters Apple uses in board and device IDs:
// letters, digits and , . _ - (e.g. "J314cAP", "Mac-1E7E29AD0135F9BC",
// "VMM-x86_64", "iPad11,1").
func validBoardID(s string) bool {
	if s == "" || len(s) > maxBoardIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == ',' || c == '.' || c == '_' || c == '-':
		default:
			return false
		}
	}
	return true
}

// validBuild accepts Apple build strings such as "25G83" or "25D771400a".
func validBuild(s string) bool {
	if s == "" || len(s) > 24 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// validExtra accepts supplemental suffixes such as "(a)".
func validExtra(s string) bool {
	if len(s) < 3 || len(s) > 8 || s[0] != '(' || s[len(s)-1] != ')' {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// validate checks the fields every release must satisfy, whatever its source.
func (r *Release) validate() error {
	if r.Version.IsZero() {
		return fmt.Errorf("%w: version is required", ErrInvalidRelease)
	}
	if m := r.Version.Major(); m < 10 || m > 99 {
		return fmt.Errorf("%w: %s: major version %d is not a macOS version (10-99)", ErrInvalidRelease, r.Version, m)
	}
	if r.VersionExtra != "" && !validExtra(r.VersionExtra) {
		return fmt.Errorf("%w: %s: version extra %q must look like \"(a)\"", ErrInvalidRelease, r.Version, r.VersionExtra)
	}
	if r.VersionExtra != "" && !r.Supplemental {
		return fmt.Errorf("%w: %s %s: a release with a version extra must be supplemental", ErrInvalidRelease, r.Version, r.VersionExtra)
	}
	for _, b := range append([]string{r.Build, r.PrerequisiteBuild}, r.AllBuilds...) {
		if b != "" && !validBuild(b) {
			return fmt.Errorf("%w: %s: malformed build %q", ErrInvalidRelease, r.Version, b)
		}
	}
	if r.PostingDate.IsZero() {
		return fmt.Errorf("%w: %s: posting date is required", ErrInvalidRelease, r.Version)
	}
	if !r.ExpirationDate.IsZero() && r.ExpirationDate.Before(r.PostingDate) {
		return fmt.Errorf("%w: %s: expiration date %s is before posting date %s", ErrInvalidRelease,
			r.Version, r.ExpirationDate.Format(time.DateOnly), r.PostingDate.Format(time.DateOnly))
	}
	for _, b := range r.SupportedDevices {
		if !validBoardID(b) {
			return fmt.Errorf("%w: %s: malformed board ID %q", ErrInvalidRelease, r.Version, truncate(b))
		}
	}
	if r.CVECount < 0 {
		return fmt.Errorf("%w: %s: negative CVE count %d", ErrInvalidRelease, r.Version, r.CVECount)
	}
	return nil
}

// normalize sorts and deduplicates the list fields and truncates dates to
// UTC days, so that Supports can binary-search.
func (r *Release) normalize() {
	r.SupportedDevices = sortedSet(r.SupportedDevices)
	r.AllBuilds = sortedSet(append(r.AllBuilds, r.Build))
	r.ActivelyExploitedCVEs = sortedSet(r.ActivelyExploitedCVEs)
	r.PostingDate = utcDay(r.PostingDate)
	r.ReleaseDate = utcDay(r.ReleaseDate)
	r.ExpirationDate = utcDay(r.ExpirationDate)
	r.sorted = true
}

// sortedSet returns a new sorted, deduplicated copy of s without empty strings.
func sortedSet(s []string) []string {
	out := make([]string, 0, len(s))
	for _, v := range s {
		if v != "" {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) == 0 {
		return nil
	}
	return slices.Clip(out)
}

// utcDay truncates t to midnight UTC of its UTC calendar day.
func utcDay(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// truncate shortens untrusted strings quoted in error messages.
func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
