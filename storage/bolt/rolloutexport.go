package bolt

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/migrate/record"
)

// Export of the kinds added with the rollout, webhook and reporting
// features whose stored form differs from PostgreSQL's (typed records);
// the ones stored as JSON alike go through ExportCatalog.

// countRollout adds the counts of those kinds, and of the DDM status items
// kept one key each, to c.
func countRollout(c record.Counts, keys func([]byte) int) {
	c[record.DDMItems] = keys(bDDMItems)
	c[record.RolloutPauses] = keys(bMSPause)
	c[record.RingPlans] = keys(bMSRings)
	c[record.EvidenceDays] = keys(bEvidence)
	c[record.ForecastMarks] = keys(bForecastMark)
	c[record.ComplianceDays] = keys(bCompDay)
	c[record.WebhookEndpoints] = keys(bWebhookEP)
	c[record.WebhookOutbox] = keys(bWebhookOut)
	c[record.WebhookOnce] = keys(bWebhookOnce)
}

// ExportComplianceDays calls fn for every group's row of every day, by day
// and then group.
func (s *Store) ExportComplianceDays(ctx context.Context, fn func(storage.ComplianceDay) error) error {
	err := s.forEachKey(ctx, bCompDay, func(_ *bbolt.Tx, k, v []byte) error {
		var d storage.ComplianceDay
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("decode compliance day %q: %w", k, err)
		}
		return fn(d)
	})
	if err != nil {
		return fmt.Errorf("export compliance days: %w", err)
	}
	return nil
}

// ExportWebhookEndpoints calls fn for every webhook endpoint in ID order,
// its secret as stored (sealed).
func (s *Store) ExportWebhookEndpoints(ctx context.Context, fn func(storage.WebhookEndpoint) error) error {
	err := s.forEachKey(ctx, bWebhookEP, func(_ *bbolt.Tx, k, v []byte) error {
		var e storage.WebhookEndpoint
		if err := json.Unmarshal(v, &e); err != nil {
			return fmt.Errorf("decode webhook endpoint %q: %w", k, err)
		}
		return fn(e)
	})
	if err != nil {
		return fmt.Errorf("export webhook endpoints: %w", err)
	}
	return nil
}

// ExportWebhookOutbox calls fn for every pending webhook delivery, with
// its attempts, next try and last error.
func (s *Store) ExportWebhookOutbox(ctx context.Context, fn func(storage.WebhookDelivery) error) error {
	err := s.forEachKey(ctx, bWebhookOut, func(_ *bbolt.Tx, k, v []byte) error {
		var d storage.WebhookDelivery
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("decode webhook delivery %q: %w", k, err)
		}
		return fn(d)
	})
	if err != nil {
		return fmt.Errorf("export webhook outbox: %w", err)
	}
	return nil
}

// ExportWebhookOnce calls fn for every event ID in the ledger of events
// emitted once, with the time it is kept until.
func (s *Store) ExportWebhookOnce(ctx context.Context, fn func(record.OnceEntry) error) error {
	err := s.forEachKey(ctx, bWebhookOnce, func(_ *bbolt.Tx, k, v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("webhook once entry %q: malformed keep-until", k)
		}
		return fn(record.OnceEntry{EventID: string(k), KeepUntil: time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC()})
	})
	if err != nil {
		return fmt.Errorf("export webhook once ledger: %w", err)
	}
	return nil
}
