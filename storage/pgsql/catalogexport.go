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
	// A pause's key is its group ID, '' for the fleet, from its record
	// (bbolt keys the fleet's pause "\x00").
	record.RolloutPauses: `INSERT INTO ms_pauses (group_id, record) VALUES ($1, $2)`,
	record.RingPlans:     `INSERT INTO ms_ring_plans (id, record) VALUES ($1, $2)`,
	record.EvidenceDays:  `INSERT INTO evidence_days (day, record) VALUES ($1::date, $2)`,
}

// catalogCopies are the raw kinds with a record per device, loaded with
// COPY (key, value) into their table rather than a statement per record.
var catalogCopies = map[string][2]string{
	record.ForecastMarks: {"forecast_marks", "device_id"},
}

// Catalog loads records of one of record.RawKinds, values as stored (DEP
// servers' keys and tokens stay sealed).
func (im *Importer) Catalog(ctx context.Context, kind string, items []record.CatalogItem) error {
	if c, ok := catalogCopies[kind]; ok {
		rows := make([][]any, 0, len(items))
		for _, it := range items {
			if !json.Valid(it.Value) {
				return fmt.Errorf("import %s %q: invalid JSON", kind, it.Key)
			}
			rows = append(rows, []any{it.Key, it.Value})
		}
		return im.copy(ctx, c[0], []string{c[1], "record"}, rows)
	}
	stmt, ok := catalogImports[kind]
	if !ok {
		return fmt.Errorf("import catalog: unknown kind %q", kind)
	}
	for _, it := range items {
		args := []any{it.Key, it.Value}
		switch kind {
		case record.ADEDevices:
			var d struct {
				Server string `json:"server"`
			}
			if err := json.Unmarshal(it.Value, &d); err != nil {
				return fmt.Errorf("import %s %q: %w", kind, it.Key, err)
			}
			args = append(args, d.Server)
		case record.RolloutPauses:
			var p struct {
				GroupID string `json:"group_id"`
			}
			if err := json.Unmarshal(it.Value, &p); err != nil {
				return fmt.Errorf("import %s %q: %w", kind, it.Key, err)
			}
			args[0] = p.GroupID
		}
		if _, err := im.tx.Exec(ctx, stmt, args...); err != nil {
			return fmt.Errorf("import %s %q: %w", kind, it.Key, err)
		}
	}
	return nil
}
