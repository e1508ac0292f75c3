package bolt

import (
	"context"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/storage/migrate/record"
)

// catalogBuckets maps the catalog's record kinds to their buckets.
var catalogBuckets = map[string][]byte{
	record.CatalogFeeds:   bCatFeed,
	record.CatalogPolls:   bCatPoll,
	record.ManualReleases: bCatMan,
	// Enrollment guards and the ABM data, copied as stored (DEP servers
	// keep their sealed keys and tokens sealed).
	record.EnrollmentGuards: bGuards,
	record.ADEDevices:       bADEDevices,
	record.ADECursors:       bADECursors,
	record.DEPServers:       bDEPServers,
	// The rollout's and the reports' JSON records, as stored.
	record.RolloutPauses: bMSPause,
	record.RingPlans:     bMSRings,
	record.EvidenceDays:  bEvidence,
	record.ForecastMarks: bForecastMark,
}

// ExportCatalog calls fn for every record of one of record.RawKinds (the
// catalog's, the enrollment guards, the ABM data, the rollout's and the
// reports' JSON records), in key order.
func (s *Store) ExportCatalog(ctx context.Context, kind string, fn func(record.CatalogItem) error) error {
	b, ok := catalogBuckets[kind]
	if !ok {
		return fmt.Errorf("export catalog: unknown kind %q", kind)
	}
	err := s.forEachKey(ctx, b, func(_ *bbolt.Tx, k, v []byte) error {
		return fn(record.CatalogItem{Key: string(k), Value: clone(v)})
	})
	if err != nil {
		return fmt.Errorf("export %s: %w", kind, err)
	}
	return nil
}
