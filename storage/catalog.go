package storage

import (
	"context"
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
}
