package storage

import (
	"context"
	"fmt"
	"time"
)

// CatalogStore keeps what an admin added to the release catalog: synced
// feeds (raw, re-parsed at start) and releases added by hand.
type CatalogStore interface {
	// PutCatalogFeed stores the latest raw body of a feed ("gdmf", "sofa").
	PutCatalogFeed(ctx context.Context, kind string, body []byte, now time.Time) error
	// CatalogFeeds returns the stored feeds by kind.
	CatalogFeeds(ctx context.Context) (map[string][]byte, error)
	// PutManualRelease stores a release added by hand (JSON), keyed by version.
	PutManualRelease(ctx context.Context, version string, rel []byte) error
	// ManualReleases returns the stored manual releases.
	ManualReleases(ctx context.Context) ([][]byte, error)
	// DeleteManualRelease removes the release added by hand under version;
	// ErrNotFound if there is none.
	DeleteManualRelease(ctx context.Context, version string) error
	// PutCatalogPoll stores the poll state of a feed (JSON: its validators
	// and when it was last checked), keyed by kind; at most MaxCatalogPoll bytes.
	PutCatalogPoll(ctx context.Context, kind string, state []byte) error
	// CatalogPolls returns the stored poll states by kind.
	CatalogPolls(ctx context.Context) (map[string][]byte, error)
}

// Bounds of the catalog records.
const (
	MaxCatalogKind = 32      // a feed kind ("gdmf", "sofa")
	MaxCatalogPoll = 4 << 10 // one feed's poll state
)

// ValidCatalogPoll checks the key and size of a poll state.
func ValidCatalogPoll(kind string, state []byte) error {
	if kind == "" || len(kind) > MaxCatalogKind {
		return fmt.Errorf("catalog feed kind: 1 to %d bytes", MaxCatalogKind)
	}
	if len(state) > MaxCatalogPoll {
		return fmt.Errorf("catalog poll state of %s: %d bytes, at most %d", kind, len(state), MaxCatalogPoll)
	}
	return nil
}
