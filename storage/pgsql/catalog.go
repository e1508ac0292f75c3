package pgsql

import (
	"context"
	"fmt"
	"time"

	"github.com/sundial-mdm/sundial/storage"
)

var _ storage.CatalogStore = (*Store)(nil)

// PutCatalogFeed implements storage.CatalogStore.
func (s *Store) PutCatalogFeed(ctx context.Context, kind string, body []byte, now time.Time) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO catalog_feeds (kind, body, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (kind) DO UPDATE SET body = EXCLUDED.body, updated_at = EXCLUDED.updated_at`, kind, body, now)
	if err != nil {
		return fmt.Errorf("store catalog feed: %w", err)
	}
	return nil
}

// CatalogFeeds implements storage.CatalogStore.
func (s *Store) CatalogFeeds(ctx context.Context) (map[string][]byte, error) {
	rows, err := s.pool.Query(ctx, `SELECT kind, body FROM catalog_feeds`)
	if err != nil {
		return nil, fmt.Errorf("load catalog feeds: %w", err)
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var k string
		var b []byte
		if err := rows.Scan(&k, &b); err != nil {
			return nil, err
		}
		out[k] = b
	}
	return out, rows.Err()
}

// PutManualRelease implements storage.CatalogStore.
func (s *Store) PutManualRelease(ctx context.Context, version string, rel []byte) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO catalog_manual (version, release) VALUES ($1, $2)
		ON CONFLICT (version) DO UPDATE SET release = EXCLUDED.release`, version, rel)
	if err != nil {
		return fmt.Errorf("store manual release: %w", err)
	}
	return nil
}

// ManualReleases implements storage.CatalogStore.
func (s *Store) ManualReleases(ctx context.Context) ([][]byte, error) {
	rows, err := s.pool.Query(ctx, `SELECT release FROM catalog_manual ORDER BY version`)
	if err != nil {
		return nil, fmt.Errorf("load manual releases: %w", err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}
