package pgsql

import (
	"context"
	"fmt"

	"github.com/sundial-mdm/sundial/storage/migrate/record"
)

// catalogImports is the statement that loads one record of each of the
// catalog's kinds. A feed's updated_at becomes the time of the import (the
// bbolt store does not keep it; the poll state carries the feed's times).
var catalogImports = map[string]string{
	record.CatalogFeeds:   `INSERT INTO catalog_feeds (kind, body, updated_at) VALUES ($1, $2, now())`,
	record.CatalogPolls:   `INSERT INTO catalog_polls (kind, state) VALUES ($1, $2)`,
	record.ManualReleases: `INSERT INTO catalog_manual (version, release) VALUES ($1, $2)`,
}

// Catalog loads records of one of the catalog's kinds.
func (im *Importer) Catalog(ctx context.Context, kind string, items []record.CatalogItem) error {
	stmt, ok := catalogImports[kind]
	if !ok {
		return fmt.Errorf("import catalog: unknown kind %q", kind)
	}
	for _, it := range items {
		if _, err := im.tx.Exec(ctx, stmt, it.Key, it.Value); err != nil {
			return fmt.Errorf("import %s %q: %w", kind, it.Key, err)
		}
	}
	return nil
}
