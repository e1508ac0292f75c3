package pgsql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/storage"
)

const deviceColumns = `id, parent_id, udid, topic, serial_number, product_name, model, model_name,
	device_name, os_version, build_version, enabled, cert_hash, authenticated_at, enrolled_at,
	checked_out_at, last_seen, push_token, push_magic, token_invalid, bootstrap_token, bootstrap_at,
	push_at, push_outcome, push_reason, push_attempt, next_repush,
	inventory, inventory_at, inventory_requested_at`

func scanDevice(row pgx.Row) (*mdm.Device, error) {
	d := new(mdm.Device)
	var (
		certHash *string
		inv      []byte
	)
	err := row.Scan(&d.ID, &d.ParentID, &d.UDID, &d.Topic, &d.SerialNumber, &d.ProductName, &d.Model, &d.ModelName,
		&d.DeviceName, &d.OSVersion, &d.BuildVersion, &d.Enabled, &certHash, scanTime(&d.AuthenticatedAt), scanTime(&d.EnrolledAt),
		scanTime(&d.CheckedOutAt), scanTime(&d.LastSeen), &d.PushToken, &d.PushMagic, &d.TokenInvalid, &d.BootstrapToken, scanTime(&d.BootstrapAt),
		scanTime(&d.LastPush.At), &d.LastPush.Outcome, &d.LastPush.Reason, &d.LastPush.Attempt, scanTime(&d.LastPush.NextRepush),
		&inv, scanTime(&d.InventoryAt), scanTime(&d.InventoryRequestedAt))
	if err != nil {
		return nil, err
	}
	if certHash != nil {
		d.CertHash = *certHash
	}
	if err := json.Unmarshal(inv, &d.Inventory); err != nil {
		return nil, fmt.Errorf("decode inventory of %s: %w", d.ID, err)
	}
	return d, nil
}

const authenticateSQL = `
INSERT INTO devices (id, udid, topic, serial_number, product_name, model, model_name, device_name,
	os_version, build_version, enabled, cert_hash, authenticated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, false, $11, $12)
ON CONFLICT (id) DO UPDATE SET
	udid = EXCLUDED.udid, topic = EXCLUDED.topic, serial_number = EXCLUDED.serial_number,
	product_name = EXCLUDED.product_name, model = EXCLUDED.model, model_name = EXCLUDED.model_name,
	device_name = EXCLUDED.device_name, os_version = EXCLUDED.os_version, build_version = EXCLUDED.build_version,
	enabled = false, cert_hash = EXCLUDED.cert_hash, authenticated_at = EXCLUDED.authenticated_at,
	enrolled_at = NULL, push_token = NULL, push_magic = '', token_invalid = false,
	inventory_requested_at = NULL, bootstrap_token = NULL, bootstrap_at = NULL`

// cancelQueueSQL cancels every pending command of $1 (on re-enrollment).
const cancelQueueSQL = `
WITH gone AS (DELETE FROM command_queue WHERE enrollment_id = $1 RETURNING seq)
UPDATE commands c SET status = 'Canceled', updated_at = $2, history = c.history || $3::jsonb
FROM gone WHERE c.seq = gone.seq`

// Authenticate implements storage.CheckinStore.
func (s *Store) Authenticate(ctx context.Context, id string, msg *mdm.CheckinMessage, certHash string, now time.Time) error {
	return s.authenticate(ctx, id, msg, certHash, now, nil)
}

// authenticate runs Authenticate and, if guard is not nil, updates the
// enrollment guard with it in the same transaction.
func (s *Store) authenticate(ctx context.Context, id string, msg *mdm.CheckinMessage, certHash string, now time.Time, guard func(*mdm.EnrollmentGuard) error) error {
	udid := msg.UDID
	if udid == "" {
		udid = msg.EnrollmentID
	}
	canceled, err := historyJSON(mdm.StatusEvent{Status: "Canceled", At: now})
	if err != nil {
		return err
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if err := s.authenticateTx(ctx, tx, id, udid, msg, certHash, now, canceled); err != nil {
			return err
		}
		if guard != nil {
			return updateGuard(ctx, tx, id, guard)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("authenticate %s: %w", id, err)
	}
	return nil
}

func (s *Store) authenticateTx(ctx context.Context, tx pgx.Tx, id, udid string, msg *mdm.CheckinMessage, certHash string, now time.Time, canceled string) error {
	var owner string
	err := tx.QueryRow(ctx, `SELECT id FROM devices WHERE cert_hash = $1 AND id <> $2`, certHash, id).Scan(&owner)
	if err == nil {
		return storage.ErrCertInUse
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	_, err = tx.Exec(ctx, authenticateSQL, id, udid, msg.Topic, msg.SerialNumber, msg.ProductName, msg.Model,
		msg.ModelName, msg.DeviceName, msg.OSVersion, msg.BuildVersion, certHash, ts(now))
	if uniqueViolation(err, "devices_cert_hash_key") {
		return storage.ErrCertInUse // bound by a concurrent Authenticate
	}
	if err != nil {
		return err
	}
	// A re-enrollment starts without the old enrollment's secrets: the
	// bootstrap token is dropped above and the agent secret here, so
	// the next TokenUpdate provisions a fresh one.
	if _, err := tx.Exec(ctx, `UPDATE agents SET secret_hash = '', secret_set_at = NULL WHERE id = $1 AND secret_hash <> ''`, id); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, cancelQueueSQL, id, ts(now), canceled)
	return err
}

const tokenUpdateSQL = `
UPDATE devices SET enabled = true, checked_out_at = NULL, push_token = $2, push_magic = $3, token_invalid = false,
	topic = CASE WHEN $4 <> '' THEN $4 ELSE topic END,
	enrolled_at = CASE WHEN $5 THEN $6 ELSE enrolled_at END,
	inventory_requested_at = CASE WHEN $7 THEN $6 ELSE inventory_requested_at END
WHERE id = $1`

// TokenUpdate implements storage.CheckinStore.
func (s *Store) TokenUpdate(ctx context.Context, id string, msg *mdm.CheckinMessage, onFirst *mdm.Command, now time.Time) (bool, error) {
	var first bool
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		first = false
		var (
			enabled  bool
			enrolled pgtype.Timestamptz
		)
		lock := func() error {
			return tx.QueryRow(ctx, `SELECT enabled, enrolled_at FROM devices WHERE id = $1 FOR UPDATE`, id).Scan(&enabled, &enrolled)
		}
		err := lock()
		if errors.Is(err, pgx.ErrNoRows) {
			pid := parentID(id)
			if pid == id {
				return fmt.Errorf("device %s: %w", id, storage.ErrNotFound)
			}
			// A user channel's first TokenUpdate creates it under its device.
			_, err = tx.Exec(ctx, `INSERT INTO devices (id, parent_id, udid, topic, authenticated_at)
				SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM devices WHERE id = $2)
				ON CONFLICT (id) DO NOTHING`, id, pid, msg.UDID, msg.Topic, ts(now))
			if err != nil {
				return err
			}
			if err = lock(); errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("device %s: %w", pid, storage.ErrNotFound)
			}
		}
		if err != nil {
			return err
		}
		first = !enabled && !enrolled.Valid
		markInventory := first && onFirst != nil && onFirst.RequestType == "DeviceInformation"
		if _, err := tx.Exec(ctx, tokenUpdateSQL, id, msg.Token, msg.PushMagic, msg.Topic, first, ts(now), markInventory); err != nil {
			return err
		}
		if first && onFirst != nil {
			return enqueue(ctx, tx, []string{id}, onFirst, now)
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("token update %s: %w", id, err)
	}
	return first, nil
}

// CheckOut implements storage.CheckinStore.
func (s *Store) CheckOut(ctx context.Context, id string, now time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE devices SET enabled = false, checked_out_at = $2
		WHERE id = $1 OR (parent_id = $1 AND parent_id <> '')`, id, ts(now))
	if err != nil {
		return fmt.Errorf("check out %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("device %s: %w", id, storage.ErrNotFound)
	}
	return nil
}

// SetBootstrapToken implements storage.CheckinStore.
func (s *Store) SetBootstrapToken(ctx context.Context, id string, sealed []byte, now time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE devices SET bootstrap_token = $2, bootstrap_at = $3 WHERE id = $1`, id, sealed, ts(now))
	if err != nil {
		return fmt.Errorf("set bootstrap token of %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("device %s: %w", id, storage.ErrNotFound)
	}
	return nil
}

// CertBound implements storage.CheckinStore.
func (s *Store) CertBound(ctx context.Context, id, certHash string) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM devices WHERE id = $1 AND cert_hash = $2)`, parentID(id), certHash).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("check certificate binding of %s: %w", id, err)
	}
	return ok, nil
}

// Device implements storage.DeviceStore.
func (s *Store) Device(ctx context.Context, id string) (*mdm.Device, error) {
	d, err := scanDevice(s.pool.QueryRow(ctx, `SELECT `+deviceColumns+` FROM devices WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("device %s: %w", id, storage.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read device %s: %w", id, err)
	}
	return d, nil
}

// Devices implements storage.DeviceStore.
func (s *Store) Devices(ctx context.Context, after string, limit int) ([]*mdm.Device, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+deviceColumns+` FROM devices WHERE id > $1 ORDER BY id LIMIT $2`, after, limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	defer rows.Close()
	var out []*mdm.Device
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("list devices: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	return out, nil
}

const updateInventorySQL = `
UPDATE devices SET inventory = $2::jsonb, inventory_at = $3,
	os_version = CASE WHEN $4 <> '' THEN $4 ELSE os_version END,
	build_version = CASE WHEN $4 <> '' THEN $5 ELSE build_version END,
	serial_number = CASE WHEN $6 <> '' THEN $6 ELSE serial_number END
WHERE id = $1`

// UpdateInventory implements storage.DeviceStore. An answer that reports
// only some keys is merged into the stored inventory (mdm.Inventory.Merge):
// the row is read and written in one transaction.
func (s *Store) UpdateInventory(ctx context.Context, id string, inv *mdm.Inventory, now time.Time) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var raw []byte // nil: replace whatever is stored
		if inv.Reported != 0 {
			if err := tx.QueryRow(ctx, `SELECT inventory FROM devices WHERE id = $1 FOR UPDATE`, id).Scan(&raw); err != nil {
				if errors.Is(err, pgx.ErrNoRows) {
					return fmt.Errorf("device %s: %w", id, storage.ErrNotFound)
				}
				return err
			}
		}
		merged, b, err := mergeInventory(id, raw, inv)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, updateInventorySQL, id, b, ts(now), merged.OSVersion, merged.BuildVersion, merged.SerialNumber)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("device %s: %w", id, storage.ErrNotFound)
		}
		return nil
	})
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("update inventory of %s: %w", id, err)
	}
	return err
}

// mergeInventory merges inv into the stored inventory raw (JSON; empty:
// none) and returns the result and its JSON for updateInventorySQL.
func mergeInventory(id string, raw []byte, inv *mdm.Inventory) (mdm.Inventory, string, error) {
	var old mdm.Inventory
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &old); err != nil {
			return old, "", fmt.Errorf("decode inventory of %s: %w", id, err)
		}
	}
	merged := inv.Merge(old)
	b, err := json.Marshal(&merged)
	if err != nil {
		return merged, "", fmt.Errorf("encode inventory of %s: %w", id, err)
	}
	return merged, string(b), nil
}

// touchSQL records last-seen times and resets the re-push schedule of a
// device seen at or after its last push. A time older than the stored one
// changes nothing.
const touchSQL = `
UPDATE devices d SET last_seen = v.t,
	push_attempt = CASE WHEN d.push_at IS NULL OR v.t >= d.push_at THEN 0 ELSE d.push_attempt END,
	next_repush = CASE WHEN d.push_at IS NULL OR v.t >= d.push_at THEN NULL ELSE d.next_repush END
FROM unnest($1::text[], $2::timestamptz[]) AS v(id, t)
WHERE d.id = v.id AND (d.last_seen IS NULL OR d.last_seen <= v.t)`

// TouchLastSeen implements storage.DeviceStore. Unknown IDs are skipped.
func (s *Store) TouchLastSeen(ctx context.Context, seen map[string]time.Time) error {
	if len(seen) == 0 {
		return nil
	}
	// Sorted, so that concurrent batches from several replicas tend to lock
	// rows in the same order (a deadlock is retried anyway).
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	times := make([]pgtype.Timestamptz, len(ids))
	for i, id := range ids {
		times[i] = ts(seen[id])
	}
	err := retry(ctx, func() error {
		_, err := s.pool.Exec(ctx, touchSQL, ids, times)
		return err
	})
	if err != nil {
		return fmt.Errorf("touch last seen: %w", err)
	}
	return nil
}

// InventoryDue implements storage.InventoryScheduler. The longest-waiting
// devices come first.
func (s *Store) InventoryDue(ctx context.Context, before time.Time, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM devices
		WHERE enabled AND parent_id = '' AND (inventory_requested_at IS NULL OR inventory_requested_at < $1)
		ORDER BY inventory_requested_at NULLS FIRST, id LIMIT $2`, ts(before), limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("list inventory due: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list inventory due: %w", err)
	}
	return ids, nil
}

// MarkInventoryRequested implements storage.InventoryScheduler. An unknown
// ID gives ErrNotFound and nothing is marked.
func (s *Store) MarkInventoryRequested(ctx context.Context, ids []string, now time.Time) error {
	ids = dedupe(ids)
	if len(ids) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE devices SET inventory_requested_at = $2 WHERE id = ANY($1)`, ids, ts(now))
		if err != nil {
			return err
		}
		if int(tag.RowsAffected()) == len(ids) {
			return nil
		}
		return missingDevice(ctx, tx, ids)
	})
	if err != nil {
		return fmt.Errorf("mark inventory requested: %w", err)
	}
	return nil
}

// missingDevice returns an ErrNotFound naming the first of ids that is not
// a known enrollment, or nil.
func missingDevice(ctx context.Context, q querier, ids []string) error {
	var missing string
	err := q.QueryRow(ctx, `SELECT u.id FROM unnest($1::text[]) WITH ORDINALITY AS u(id, n)
		WHERE NOT EXISTS (SELECT 1 FROM devices d WHERE d.id = u.id) ORDER BY u.n LIMIT 1`, ids).Scan(&missing)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("enrollment %s: %w", missing, storage.ErrNotFound)
}
