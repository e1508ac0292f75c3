package migrate

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/storage"
)

// CopyCatalog copies what admins added to the release catalog (synced
// feeds and releases added by hand) after Run, and reports both kinds as
// Run reports the others. Both are keyed (feed kind, version), so a second
// copy overwrites rather than duplicates; now is the stored sync time of
// the feeds, which the source does not keep.
func CopyCatalog(ctx context.Context, from, to storage.CatalogStore, now time.Time) ([]KindReport, error) {
	feeds, err := from.CatalogFeeds(ctx)
	if err != nil {
		return nil, fmt.Errorf("read catalog feeds: %w", err)
	}
	rels, err := from.ManualReleases(ctx)
	if err != nil {
		return nil, fmt.Errorf("read manual releases: %w", err)
	}
	for kind, body := range feeds {
		if err := to.PutCatalogFeed(ctx, kind, body, now); err != nil {
			return nil, fmt.Errorf("copy catalog feed %s: %w", kind, err)
		}
	}
	for _, raw := range rels {
		v, err := releaseVersion(raw)
		if err != nil {
			return nil, err
		}
		if err := to.PutManualRelease(ctx, v, raw); err != nil {
			return nil, fmt.Errorf("copy manual release %s: %w", v, err)
		}
	}
	gotFeeds, err := to.CatalogFeeds(ctx)
	if err != nil {
		return nil, fmt.Errorf("count target catalog feeds: %w", err)
	}
	gotRels, err := to.ManualReleases(ctx)
	if err != nil {
		return nil, fmt.Errorf("count target manual releases: %w", err)
	}
	out := []KindReport{
		{Kind: "catalog feeds", Source: len(feeds), Copied: len(feeds), Target: len(gotFeeds)},
		{Kind: "manual releases", Source: len(rels), Copied: len(rels), Target: len(gotRels)},
	}
	for _, k := range out {
		if k.Source != k.Target {
			return out, fmt.Errorf("%w: %s: %d in the source, %d in the target", ErrCountMismatch, k.Kind, k.Source, k.Target)
		}
	}
	return out, nil
}

// releaseVersion is the key of a stored manual release: its version.
func releaseVersion(raw []byte) (string, error) {
	var r catalog.Release
	if err := json.Unmarshal(raw, &r); err != nil {
		return "", fmt.Errorf("manual release unreadable: %w", err)
	}
	return r.Version.String(), nil
}
