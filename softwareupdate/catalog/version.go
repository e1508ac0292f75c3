package catalog

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// maxVersionComponent caps each numeric part of a version. Apple's largest
// so far is two digits; anything near the cap is garbage.
const maxVersionComponent = 9999

// ErrBadVersion is wrapped by every error ParseVersion returns.
var ErrBadVersion = errors.New("malformed version")

// Version is a macOS product version such as 26.6.2, compared numerically:
// 14.7.10 > 14.7.9, and 15 == 15.0 == 15.0.0. The zero Version means
// "unknown". Versions are comparable with == and usable as map keys.
type Version struct {
	major, minor, patch uint16
}

// NewVersion returns the version major.minor.patch. It does not validate;
// use ParseVersion for untrusted input.
func NewVersion(major, minor, patch int) Version {
	return Version{major: uint16(major), minor: uint16(minor), patch: uint16(patch)}
}

// ParseVersion parses "M", "M.m" or "M.m.p" (decimal digits only, no signs,
// spaces or suffixes such as " (a)"). The major version must be at least 1.
func ParseVersion(s string) (Version, error) {
	if s == "" {
		return Version{}, fmt.Errorf("%w: empty", ErrBadVersion)
	}
	if len(s) > 32 {
		return Version{}, fmt.Errorf("%w: %d characters is too long", ErrBadVersion, len(s))
	}
	var parts [3]uint16
	n := 0
	for field := range strings.SplitSeq(s, ".") {
		if n == 3 {
			return Version{}, fmt.Errorf("%w: %q has more than three parts", ErrBadVersion, s)
		}
		if field == "" {
			return Version{}, fmt.Errorf("%w: %q has an empty part", ErrBadVersion, s)
		}
		for i := 0; i < len(field); i++ {
			if field[i] < '0' || field[i] > '9' {
				return Version{}, fmt.Errorf("%w: %q: %q is not a number", ErrBadVersion, s, field)
			}
		}
		v, err := strconv.Atoi(field)
		if err != nil || v > maxVersionComponent {
			return Version{}, fmt.Errorf("%w: %q: part %q is out of range (0-%d)", ErrBadVersion, s, field, maxVersionComponent)
		}
		parts[n] = uint16(v)
		n++
	}
	if parts[0] == 0 {
		return Version{}, fmt.Errorf("%w: %q: major version must be at least 1", ErrBadVersion, s)
	}
	return Version{major: parts[0], minor: parts[1], patch: parts[2]}, nil
}

// MustParseVersion is ParseVersion that panics on error, for constants and tests.
func MustParseVersion(s string) Version {
	v, err := ParseVersion(s)
	if err != nil {
		panic(err)
	}
	return v
}

// Major returns the major version (26 for 26.6.2).
func (v Version) Major() int { return int(v.major) }

// Minor returns the minor version (6 for 26.6.2).
func (v Version) Minor() int { return int(v.minor) }

// Patch returns the patch version (2 for 26.6.2).
func (v Version) Patch() int { return int(v.patch) }

// IsZero reports whether v is the zero (unknown) version.
func (v Version) IsZero() bool { return v == Version{} }

// Compare returns -1, 0 or +1 as v is older than, equal to or newer than w.
func (v Version) Compare(w Version) int {
	switch {
	case v.major != w.major:
		return cmp3(v.major, w.major)
	case v.minor != w.minor:
		return cmp3(v.minor, w.minor)
	default:
		return cmp3(v.patch, w.patch)
	}
}

func cmp3(a, b uint16) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Less reports whether v is older than w.
func (v Version) Less(w Version) bool { return v.Compare(w) < 0 }

// String returns the canonical form Apple uses: "15.0" for a major release,
// "26.6.2" with a patch, and "" for the zero version.
func (v Version) String() string {
	if v.IsZero() {
		return ""
	}
	s := strconv.Itoa(int(v.major)) + "." + strconv.Itoa(int(v.minor))
	if v.patch != 0 {
		s += "." + strconv.Itoa(int(v.patch))
	}
	return s
}

// MarshalText encodes v in its canonical form (empty for the zero version).
func (v Version) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalText parses a version; empty text gives the zero version.
func (v *Version) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*v = Version{}
		return nil
	}
	p, err := ParseVersion(string(b))
	if err != nil {
		return err
	}
	*v = p
	return nil
}
