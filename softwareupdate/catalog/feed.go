package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Size caps for feed documents. The snapshots are about 100 KB (gdmf) and
// 500 KB (SOFA); the caps leave room for years of growth and bound memory.
const (
	MaxGDMFSize = 8 << 20
	MaxSOFASize = 32 << 20
)

// maxReleasesPerFeed bounds how many macOS releases one feed may describe.
const maxReleasesPerFeed = 5000

// ErrFeed is wrapped by every feed parse error.
var ErrFeed = errors.New("bad feed")

// FeedError reports what was wrong with a feed and where.
type FeedError struct {
	Feed string // "gdmf", "sofa v1", "sofa v2"
	Path string // where in the document, e.g. "AssetSets.macOS[3]"; may be empty
	Err  error
}

func (e *FeedError) Error() string {
	if e.Path == "" {
		return e.Feed + " feed: " + e.Err.Error()
	}
	return e.Feed + " feed: " + e.Path + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *FeedError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrFeed) true for every FeedError.
func (e *FeedError) Is(target error) bool { return target == ErrFeed }

// readCapped reads all of r, failing if it holds more than limit bytes.
func readCapped(r io.Reader, limit int64, feed string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, &FeedError{Feed: feed, Err: fmt.Errorf("read: %w", err)}
	}
	if int64(len(b)) > limit {
		return nil, &FeedError{Feed: feed, Err: fmt.Errorf("larger than %d bytes", limit)}
	}
	return b, nil
}

// decodeStrict decodes one JSON object from b into v and rejects anything
// that is not a single JSON object (trailing data, arrays, scalars).
func decodeStrict(b []byte, v any, feed string) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return &FeedError{Feed: feed, Err: errors.New("empty document")}
	}
	if b[0] != '{' {
		return &FeedError{Feed: feed, Err: errors.New("not a JSON object")}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return &FeedError{Feed: feed, Err: fmt.Errorf("decode: %w", err)}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &FeedError{Feed: feed, Err: errors.New("trailing data after the JSON object")}
	}
	return nil
}

// parseDay parses "2026-08-17" or an RFC 3339 timestamp such as
// "2026-08-17T00:00:00Z" into midnight UTC of that UTC day. Empty gives zero.
func parseDay(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if len(s) > 40 {
		return time.Time{}, fmt.Errorf("malformed date %q", truncate(s))
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("malformed date %q (want YYYY-MM-DD or RFC 3339)", s)
	}
	if t.Year() < 2000 || t.Year() > 2200 {
		return time.Time{}, fmt.Errorf("date %q is out of range", s)
	}
	return utcDay(t), nil
}

// splitVersionExtra splits "26.3.1 (a)" into 26.3.1 and "(a)".
func splitVersionExtra(s string) (Version, string, error) {
	base, extra, hasExtra := strings.Cut(s, " ")
	v, err := ParseVersion(base)
	if err != nil {
		return Version{}, "", err
	}
	if hasExtra && !validExtra(extra) {
		return Version{}, "", fmt.Errorf("%w: %q: unexpected suffix %q", ErrBadVersion, truncate(s), truncate(extra))
	}
	return v, extra, nil
}

// earliest returns the earlier of two times, ignoring zero values.
func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}

// builder accumulates one feed's releases, merging duplicates.
type builder struct {
	feed   string
	m      map[releaseKey]Release
	models map[string][]string
}

func newBuilder(feed string) *builder {
	return &builder{feed: feed, m: map[releaseKey]Release{}, models: map[string][]string{}}
}

// add validates and records a release found at path.
func (b *builder) add(path string, r Release) error {
	if err := r.validate(); err != nil {
		return &FeedError{Feed: b.feed, Path: path, Err: err}
	}
	r.normalize()
	k := keyOf(&r)
	if have, ok := b.m[k]; ok {
		r = mergeRelease(have, r)
	} else if len(b.m) >= maxReleasesPerFeed {
		return &FeedError{Feed: b.feed, Path: path, Err: fmt.Errorf("more than %d releases", maxReleasesPerFeed)}
	}
	b.m[k] = r
	return nil
}

func (b *builder) catalog() *Catalog {
	for k, v := range b.models {
		b.models[k] = sortedSet(v)
	}
	c := &Catalog{}
	c.snap.Store(buildSnapshot(b.m, b.models, nil))
	return c
}
