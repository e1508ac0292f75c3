package pgsql

import (
	"context"
	"encoding/json"
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
	// Enrollment guards need their device (copied before them).
	record.EnrollmentGuards: `INSERT INTO enrollment_guards (id, guard) VALUES ($1, $2)`,
	record.ADECursors:       `INSERT INTO ade_cursors (server, cursor) VALUES ($1, convert_from($2, 'UTF8'))`,
	record.DEPServers:       `INSERT INTO dep_servers (name, record) VALUES ($1, $2)`,
	// An ABM device's server column comes from its record (see Catalog).
	record.ADEDevices: `INSERT INTO ade_devices (serial, server, record) VALUES ($1, $3, $2)`,
}

// Catalog loads records of one of record.RawKinds, values as stored (DEP
// servers' keys and tokens stay sealed).
func (im *Importer) Catalog(ctx context.Context, kind string, items []record.CatalogItem) error {
	stmt, ok := catalogImports[kind]
	if !ok {
		return fmt.Errorf("import catalog: unknown kind %q", kind)
	}
	for _, it := range items {
		args := []any{it.Key, it.Value}
		if kind == record.ADEDevices {
			var d struct {
				Server string `json:"server"`
			}
			if err := json.Unmarshal(it.Value, &d); err != nil {
				return fmt.Errorf("import %s %q: %w", kind, it.Key, err)
			}
			args = append(args, d.Server)
		}
		if _, err := im.tx.Exec(ctx, stmt, args...); err != nil {
			return fmt.Errorf("import %s %q: %w", kind, it.Key, err)
		}
	}
	return nil
}
