package pgsql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sundial-mdm/sundial/storage"
)

var (
	_ storage.ADEStore   = (*Store)(nil)
	_ storage.ADEUpdater = (*Store)(nil)
)

// ApplyADEPage implements storage.ADEStore: the page's devices and its
// cursor in one transaction.
func (s *Store) ApplyADEPage(ctx context.Context, p storage.ADEPage, now time.Time) error {
	if p.Server == "" || len(p.Cursor) > storage.MaxADECursor {
		return fmt.Errorf("apply abm page: missing server or overlong cursor")
	}
	serials := make([]string, len(p.Upsert))
	for i := range p.Upsert {
		if err := storage.CheckADEDevice(&p.Upsert[i]); err != nil {
			return fmt.Errorf("apply abm page: %w", err)
		}
		serials[i] = p.Upsert[i].Serial
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		old, err := loadADE(ctx, tx, `SELECT record FROM ade_devices WHERE serial = ANY($1) FOR UPDATE`, serials)
		if err != nil {
			return err
		}
		batch := &pgx.Batch{}
		for _, in := range p.Upsert {
			d := in
			if o, ok := old[in.Serial]; ok {
				d.Group, d.AssignResult, d.AssignedAt = o.Group, o.AssignResult, o.AssignedAt
				d.EnrollmentID, d.EnrolledAt = o.EnrollmentID, o.EnrolledAt
			}
			d.Server, d.UpdatedAt = p.Server, now
			v, err := json.Marshal(&d)
			if err != nil {
				return err
			}
			batch.Queue(`INSERT INTO ade_devices (serial, server, record) VALUES ($1, $2, $3)
				ON CONFLICT (serial) DO UPDATE SET server = EXCLUDED.server, record = EXCLUDED.record`, d.Serial, d.Server, v)
		}
		if len(p.Deleted) > 0 {
			// Only this server's records: a serial moved to another ABM
			// server of ours must not vanish with the old one's delete.
			batch.Queue(`DELETE FROM ade_devices WHERE serial = ANY($1) AND server = $2`, p.Deleted, p.Server)
		}
		batch.Queue(`INSERT INTO ade_cursors (server, cursor) VALUES ($1, $2)
			ON CONFLICT (server) DO UPDATE SET cursor = EXCLUDED.cursor`, p.Server, p.Cursor)
		return tx.SendBatch(ctx, batch).Close()
	})
}

func loadADE(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, sql string, args ...any) (map[string]*storage.ADEDevice, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("read abm devices: %w", err)
	}
	defer rows.Close()
	out := map[string]*storage.ADEDevice{}
	for rows.Next() {
		var v []byte
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		d := new(storage.ADEDevice)
		if err := json.Unmarshal(v, d); err != nil {
			return nil, fmt.Errorf("decode abm device: %w", err)
		}
		out[d.Serial] = d
	}
	return out, rows.Err()
}

// ADECursor implements storage.ADEStore.
func (s *Store) ADECursor(ctx context.Context, server string) (string, error) {
	var c string
	err := s.pool.QueryRow(ctx, `SELECT cursor FROM ade_cursors WHERE server = $1`, server).Scan(&c)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read abm cursor: %w", err)
	}
	return c, nil
}

// ADEDevice implements storage.ADEStore.
func (s *Store) ADEDevice(ctx context.Context, serial string) (*storage.ADEDevice, error) {
	var v []byte
	err := s.pool.QueryRow(ctx, `SELECT record FROM ade_devices WHERE serial = $1`, serial).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("abm device %s: %w", serial, storage.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read abm device %s: %w", serial, err)
	}
	d := new(storage.ADEDevice)
	if err := json.Unmarshal(v, d); err != nil {
		return nil, fmt.Errorf("decode abm device %s: %w", serial, err)
	}
	return d, nil
}

// ADEDevices implements storage.ADEStore.
func (s *Store) ADEDevices(ctx context.Context, after string, limit int) ([]storage.ADEDevice, error) {
	sql := `SELECT record FROM ade_devices WHERE serial > $1 ORDER BY serial`
	args := []any{after}
	if limit > 0 {
		sql += ` LIMIT $2`
		args = append(args, limit)
	}
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("list abm devices: %w", err)
	}
	defer rows.Close()
	var out []storage.ADEDevice
	for rows.Next() {
		var v []byte
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		var d storage.ADEDevice
		if err := json.Unmarshal(v, &d); err != nil {
			return nil, fmt.Errorf("decode abm device: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// updateADE rewrites the records of serials under a row lock.
func (s *Store) updateADE(ctx context.Context, serials []string, f func(d *storage.ADEDevice)) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		old, err := loadADE(ctx, tx, `SELECT record FROM ade_devices WHERE serial = ANY($1) FOR UPDATE`, serials)
		if err != nil {
			return err
		}
		batch := &pgx.Batch{}
		for _, d := range old {
			f(d)
			if err := storage.CheckADEDevice(d); err != nil {
				return err
			}
			v, err := json.Marshal(d)
			if err != nil {
				return err
			}
			batch.Queue(`UPDATE ade_devices SET record = $2 WHERE serial = $1`, d.Serial, v)
		}
		return tx.SendBatch(ctx, batch).Close()
	})
}

// SetADEAssignResults implements storage.ADEUpdater.
func (s *Store) SetADEAssignResults(ctx context.Context, results map[string]string, now time.Time) error {
	serials := make([]string, 0, len(results))
	for k := range results {
		serials = append(serials, k)
	}
	return s.updateADE(ctx, serials, func(d *storage.ADEDevice) {
		d.AssignResult, d.AssignedAt, d.UpdatedAt = results[d.Serial], now, now
	})
}

// SetADEGroup implements storage.ADEUpdater.
func (s *Store) SetADEGroup(ctx context.Context, serial, group string, now time.Time) error {
	if _, err := s.ADEDevice(ctx, serial); err != nil {
		return err
	}
	return s.updateADE(ctx, []string{serial}, func(d *storage.ADEDevice) { d.Group, d.UpdatedAt = group, now })
}

// MarkADEEnrolled implements storage.ADEUpdater.
func (s *Store) MarkADEEnrolled(ctx context.Context, serial, udid string, now time.Time) error {
	if _, err := s.ADEDevice(ctx, serial); err != nil {
		return err
	}
	return s.updateADE(ctx, []string{serial}, func(d *storage.ADEDevice) { d.EnrollmentID, d.EnrolledAt, d.UpdatedAt = udid, now, now })
}

var _ storage.DEPServerStore = (*Store)(nil)

// PutDEPServer implements storage.DEPServerStore.
func (s *Store) PutDEPServer(ctx context.Context, srv *storage.DEPServer) error {
	v, err := storage.EncodeDEPServer(srv)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO dep_servers (name, record) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET record = EXCLUDED.record`, srv.Name, v)
	if err != nil {
		return fmt.Errorf("put abm server %s: %w", srv.Name, err)
	}
	return nil
}

// DEPServer implements storage.DEPServerStore.
func (s *Store) DEPServer(ctx context.Context, name string) (*storage.DEPServer, error) {
	var v []byte
	err := s.pool.QueryRow(ctx, `SELECT record FROM dep_servers WHERE name = $1`, name).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("abm server %s: %w", name, storage.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read abm server %s: %w", name, err)
	}
	srv := new(storage.DEPServer)
	if err := json.Unmarshal(v, srv); err != nil {
		return nil, fmt.Errorf("decode abm server %s: %w", name, err)
	}
	return srv, nil
}

// DEPServers implements storage.DEPServerStore.
func (s *Store) DEPServers(ctx context.Context) ([]storage.DEPServer, error) {
	rows, err := s.pool.Query(ctx, `SELECT record FROM dep_servers ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list abm servers: %w", err)
	}
	defer rows.Close()
	var out []storage.DEPServer
	for rows.Next() {
		var v []byte
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		var srv storage.DEPServer
		if err := json.Unmarshal(v, &srv); err != nil {
			return nil, fmt.Errorf("decode abm server: %w", err)
		}
		out = append(out, srv)
	}
	return out, rows.Err()
}
