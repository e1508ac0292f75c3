package pgsql

import (
	"context"
	"fmt"

	"github.com/sundial-mdm/sundial/storage"
)

// DeleteManualRelease implements storage.CatalogStore.
func (s *Store) DeleteManualRelease(ctx context.Context, version string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM catalog_manual WHERE version = $1`, version)
	if err != nil {
		return fmt.Errorf("delete manual release: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("manual release %q: %w", version, storage.ErrNotFound)
	}
	return nil
}

// PutCatalogPoll implements storage.CatalogStore.
func (s *Store) PutCatalogPoll(ctx context.Context, kind string, state []byte) error {
	if err := storage.ValidCatalogPoll(kind, state); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO catalog_polls (kind, state) VALUES ($1, $2)
		ON CONFLICT (kind) DO UPDATE SET state = EXCLUDED.state`, kind, state)
	if err != nil {
		return fmt.Errorf("store catalog poll state: %w", err)
	}
	return nil
}

// CatalogPolls implements storage.CatalogStore.
func (s *Store) CatalogPolls(ctx context.Context) (map[string][]byte, error) {
	rows, err := s.pool.Query(ctx, `SELECT kind, state FROM catalog_polls`)
	if err != nil {
		return nil, fmt.Errorf("load catalog poll states: %w", err)
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
