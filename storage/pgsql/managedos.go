package pgsql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sundial-mdm/sundial/internal/webhook"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// The Managed OS store (migration 0003): ms_groups, ms_members,
// ms_policies, ms_exceptions, ms_states (with the due index on next_due),
// ms_history and ms_audit. Records are stored as JSON beside the columns
// that are searched, as the bbolt backend stores them.
//
// Concurrency between replicas: admin changes that depend on a group
// existing lock its row (FOR KEY SHARE) so a concurrent DeleteGroup waits
// for them or they fail; Commit locks the state rows it checks (FOR UPDATE)
// and writes a state only where the stored revision is still the one it
// checked, so two replicas committing one device never both succeed.

var _ scheduler.Store = (*Store)(nil)

// nanosArg is t as unix nanoseconds for a next_due column, NULL for zero.
func nanosArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

// writeAudit appends a (nil: no entry) and sets its Seq. The seq column is
// authoritative; the Seq inside the stored JSON is not read.
func writeAudit(ctx context.Context, q querier, a *scheduler.AuditEntry) error {
	if a == nil {
		return nil
	}
	b, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode audit entry: %w", err)
	}
	var seq int64
	if err := q.QueryRow(ctx, `INSERT INTO ms_audit (entry) VALUES ($1) RETURNING seq`, string(b)).Scan(&seq); err != nil {
		return fmt.Errorf("write audit entry: %w", err)
	}
	a.Seq = uint64(seq)
	return nil
}

// lockGroup reports whether group id exists (the default group always
// does), locking its row against a concurrent delete until the
// transaction ends.
func lockGroup(ctx context.Context, q querier, id string) (bool, error) {
	if id == scheduler.DefaultGroupID {
		return true, nil
	}
	var one int
	err := q.QueryRow(ctx, `SELECT 1 FROM ms_groups WHERE id = $1 FOR KEY SHARE`, id).Scan(&one)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("look up group %s: %w", id, err)
	}
	return true, nil
}

// PutGroup implements scheduler.GroupStore.
func (s *Store) PutGroup(ctx context.Context, g scheduler.Group, audit *scheduler.AuditEntry) error {
	if !scheduler.ValidGroupID(g.ID) {
		return fmt.Errorf("group id %q: %w", g.ID, scheduler.ErrInvalid)
	}
	rec, err := json.Marshal(g)
	if err != nil {
		return fmt.Errorf("encode group %s: %w", g.ID, err)
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO ms_groups (id, record) VALUES ($1, $2)
			ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record`, g.ID, string(rec)); err != nil {
			return err
		}
		return writeAudit(ctx, tx, audit)
	})
	if err != nil {
		return fmt.Errorf("put group %s: %w", g.ID, err)
	}
	return nil
}

// DeleteGroup implements scheduler.GroupStore. Memberships go with the
// group row (ON DELETE CASCADE); its policy and group exception are
// deleted in the same transaction.
func (s *Store) DeleteGroup(ctx context.Context, id string, audit *scheduler.AuditEntry) error {
	if id == scheduler.DefaultGroupID {
		return fmt.Errorf("the default group cannot be deleted: %w", scheduler.ErrInvalid)
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM ms_groups WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("group %s: %w", id, storage.ErrNotFound)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM ms_policies WHERE group_id = $1`, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM ms_exceptions WHERE scope = $1 AND id = $2`, string(scheduler.ScopeGroup), id); err != nil {
			return err
		}
		return writeAudit(ctx, tx, audit)
	})
	if errors.Is(err, storage.ErrNotFound) {
		return err
	}
	if err != nil {
		return fmt.Errorf("delete group %s: %w", id, err)
	}
	return nil
}

// Groups implements scheduler.GroupStore.
func (s *Store) Groups(ctx context.Context) ([]scheduler.Group, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, record FROM ms_groups ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	var (
		out        []scheduler.Group
		hasDefault bool
	)
	err = forEachRow(rows, func(row pgx.CollectableRow) error {
		var (
			id  string
			raw []byte
			g   scheduler.Group
		)
		if err := row.Scan(&id, &raw); err != nil {
			return err
		}
		if err := json.Unmarshal(raw, &g); err != nil {
			return fmt.Errorf("decode group %s: %w", id, err)
		}
		hasDefault = hasDefault || g.ID == scheduler.DefaultGroupID
		out = append(out, g)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	if !hasDefault {
		out = append(out, scheduler.Group{ID: scheduler.DefaultGroupID, Name: "Default"})
		slices.SortFunc(out, func(a, b scheduler.Group) int {
			switch {
			case a.ID < b.ID:
				return -1
			case a.ID > b.ID:
				return 1
			}
			return 0
		})
	}
	return out, nil
}

// AssignDevices implements scheduler.GroupStore.
func (s *Store) AssignDevices(ctx context.Context, group string, ids []string, audit *scheduler.AuditEntry) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		ok, err := lockGroup(ctx, tx, group)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("group %s: %w", group, storage.ErrNotFound)
		}
		if slices.Contains(ids, "") {
			return fmt.Errorf("empty device id: %w", scheduler.ErrInvalid)
		}
		// Sorted, so that concurrent assignments lock rows in one order.
		sorted := slices.Clone(ids)
		slices.Sort(sorted)
		sorted = slices.Compact(sorted)
		if group == scheduler.DefaultGroupID {
			_, err = tx.Exec(ctx, `DELETE FROM ms_members WHERE device_id = ANY($1)`, sorted)
		} else {
			_, err = tx.Exec(ctx, `INSERT INTO ms_members (device_id, group_id)
				SELECT u.id, $2 FROM unnest($1::text[]) AS u(id)
				ON CONFLICT (device_id) DO UPDATE SET group_id = EXCLUDED.group_id`, sorted, group)
		}
		if err != nil {
			return err
		}
		return writeAudit(ctx, tx, audit)
	})
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, scheduler.ErrInvalid) {
		return err
	}
	if err != nil {
		return fmt.Errorf("assign devices to %s: %w", group, err)
	}
	return nil
}

// GroupsOf implements scheduler.GroupStore.
func (s *Store) GroupsOf(ctx context.Context, ids []string) ([]string, error) {
	out := make([]string, len(ids))
	for i := range out {
		out[i] = scheduler.DefaultGroupID
	}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT device_id, group_id FROM ms_members WHERE device_id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("read group membership: %w", err)
	}
	member := make(map[string]string, len(ids))
	err = forEachRow(rows, func(row pgx.CollectableRow) error {
		var id, g string
		if err := row.Scan(&id, &g); err != nil {
			return err
		}
		member[id] = g
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read group membership: %w", err)
	}
	for i, id := range ids {
		if g, ok := member[id]; ok {
			out[i] = g
		}
	}
	return out, nil
}

// putPolicySQL stores a policy with the next revision in one statement
// (the row lock of the upsert orders concurrent puts).
const putPolicySQL = `
INSERT INTO ms_policies AS p (group_id, revision, record) VALUES ($1, 1, $2)
ON CONFLICT (group_id) DO UPDATE SET revision = p.revision + 1, record = EXCLUDED.record
RETURNING revision`

// PutPolicy implements scheduler.PolicyStore. The stored JSON's revision
// is ignored on reading; the revision column is authoritative.
func (s *Store) PutPolicy(ctx context.Context, rec scheduler.PolicyRecord, audit *scheduler.AuditEntry) (*scheduler.PolicyRecord, error) {
	rec.Revision = 0
	raw, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encode policy of %s: %w", rec.GroupID, err)
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		ok, err := lockGroup(ctx, tx, rec.GroupID)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("group %s: %w", rec.GroupID, storage.ErrNotFound)
		}
		var rev int64
		if err := tx.QueryRow(ctx, putPolicySQL, rec.GroupID, string(raw)).Scan(&rev); err != nil {
			return err
		}
		rec.Revision = uint64(rev)
		return writeAudit(ctx, tx, audit)
	})
	if errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("put policy of %s: %w", rec.GroupID, err)
	}
	return &rec, nil
}

// Policies implements scheduler.PolicyStore, in group ID order.
func (s *Store) Policies(ctx context.Context) ([]scheduler.PolicyRecord, error) {
	rows, err := s.pool.Query(ctx, `SELECT group_id, revision, record FROM ms_policies ORDER BY group_id`)
	if err != nil {
		return nil, fmt.Errorf("list policies: %w", err)
	}
	var out []scheduler.PolicyRecord
	err = forEachRow(rows, func(row pgx.CollectableRow) error {
		var (
			id  string
			rev int64
			raw []byte
			p   scheduler.PolicyRecord
		)
		if err := row.Scan(&id, &rev, &raw); err != nil {
			return err
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			return fmt.Errorf("decode policy %s: %w", id, err)
		}
		p.Revision = uint64(rev)
		out = append(out, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list policies: %w", err)
	}
	return out, nil
}

// PutException implements scheduler.ExceptionStore.
func (s *Store) PutException(ctx context.Context, rec scheduler.ExceptionRecord, audit *scheduler.AuditEntry) error {
	switch rec.Scope {
	case scheduler.ScopeDevice, scheduler.ScopeGroup:
	default:
		return fmt.Errorf("exception scope %q: %w", rec.Scope, scheduler.ErrInvalid)
	}
	if rec.ID == "" {
		return fmt.Errorf("exception without id: %w", scheduler.ErrInvalid)
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode %s exception %s: %w", rec.Scope, rec.ID, err)
	}
	ev, err := webhook.ExceptionEvent(&rec, rec.CreatedAt)
	if err != nil {
		return err
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if rec.Scope == scheduler.ScopeGroup {
			ok, err := lockGroup(ctx, tx, rec.ID)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("group %s: %w", rec.ID, storage.ErrNotFound)
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO ms_exceptions (scope, id, record) VALUES ($1, $2, $3)
			ON CONFLICT (scope, id) DO UPDATE SET record = EXCLUDED.record`, string(rec.Scope), rec.ID, string(raw)); err != nil {
			return err
		}
		if err := enqueueEventsTx(ctx, tx, []webhook.Event{ev}); err != nil {
			return err
		}
		return writeAudit(ctx, tx, audit)
	})
	if errors.Is(err, storage.ErrNotFound) {
		return err
	}
	if err != nil {
		return fmt.Errorf("put %s exception %s: %w", rec.Scope, rec.ID, err)
	}
	return nil
}

// DeleteException implements scheduler.ExceptionStore.
func (s *Store) DeleteException(ctx context.Context, scope scheduler.ExceptionScope, id string, audit *scheduler.AuditEntry) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM ms_exceptions WHERE scope = $1 AND id = $2`, string(scope), id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("%s exception %s: %w", scope, id, storage.ErrNotFound)
		}
		return writeAudit(ctx, tx, audit)
	})
	if errors.Is(err, storage.ErrNotFound) {
		return err
	}
	if err != nil {
		return fmt.Errorf("delete %s exception %s: %w", scope, id, err)
	}
	return nil
}

// Exceptions implements scheduler.ExceptionStore, ordered by scope and ID.
func (s *Store) Exceptions(ctx context.Context) ([]scheduler.ExceptionRecord, error) {
	rows, err := s.pool.Query(ctx, `SELECT record FROM ms_exceptions ORDER BY scope, id`)
	if err != nil {
		return nil, fmt.Errorf("list exceptions: %w", err)
	}
	var out []scheduler.ExceptionRecord
	err = forEachRow(rows, func(row pgx.CollectableRow) error {
		var (
			raw []byte
			e   scheduler.ExceptionRecord
		)
		if err := row.Scan(&raw); err != nil {
			return err
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			return fmt.Errorf("decode exception: %w", err)
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list exceptions: %w", err)
	}
	return out, nil
}

// States implements scheduler.StateStore.
func (s *Store) States(ctx context.Context, ids []string) ([]*scheduler.State, error) {
	out := make([]*scheduler.State, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT device_id, state FROM ms_states WHERE device_id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("read update states: %w", err)
	}
	byID := make(map[string][]byte, len(ids))
	err = forEachRow(rows, func(row pgx.CollectableRow) error {
		var (
			id  string
			raw []byte
		)
		if err := row.Scan(&id, &raw); err != nil {
			return err
		}
		byID[id] = raw
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read update states: %w", err)
	}
	for i, id := range ids {
		raw, ok := byID[id]
		if !ok {
			continue
		}
		st := new(scheduler.State)
		if err := json.Unmarshal(raw, st); err != nil {
			return nil, fmt.Errorf("decode update state %s: %w", id, err)
		}
		out[i] = st
	}
	return out, nil
}

// StateIDs implements scheduler.StateStore.
func (s *Store) StateIDs(ctx context.Context, after string, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT device_id FROM ms_states WHERE device_id > $1 ORDER BY device_id LIMIT $2`, after, limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("list update states: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list update states: %w", err)
	}
	return ids, nil
}

// Unevaluated implements scheduler.StateStore.
func (s *Store) Unevaluated(ctx context.Context, after string, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT d.id FROM devices d
		WHERE d.id > $1 AND d.parent_id = ''
			AND NOT EXISTS (SELECT 1 FROM ms_states m WHERE m.device_id = d.id)
		ORDER BY d.id LIMIT $2`, after, limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("list unevaluated devices: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list unevaluated devices: %w", err)
	}
	return ids, nil
}

// DueDevices implements scheduler.StateStore. Due times are compared in
// nanoseconds, as they are stored.
func (s *Store) DueDevices(ctx context.Context, now time.Time, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT device_id FROM ms_states
		WHERE next_due IS NOT NULL AND next_due <= $1
		ORDER BY next_due, device_id LIMIT $2`, now.UnixNano(), limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("list due devices: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list due devices: %w", err)
	}
	return ids, nil
}

// writeStatesSQL writes new states: a new row where there was none, or an
// update where the stored revision is still the one checked ($2 - 1). A
// row another transaction created since the check is not touched and not
// returned (a conflict).
const writeStatesSQL = `
INSERT INTO ms_states AS m (device_id, rev, next_due, state)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[]::json[])
ON CONFLICT (device_id) DO UPDATE SET rev = EXCLUDED.rev, next_due = EXCLUDED.next_due, state = EXCLUDED.state
	WHERE m.rev = EXCLUDED.rev - 1
RETURNING device_id`

// Commit implements scheduler.StateStore in one transaction: the stored
// revisions are read and locked (FOR UPDATE), checked against every
// commit, and only then are states, history and commands written. As in
// the bbolt backend, every commit of a batch is checked against the
// revision stored before the batch; a device committed twice in one batch
// ends with the last of its states, and the history and commands of both.
func (s *Store) Commit(ctx context.Context, commits []scheduler.Commit, now time.Time) error {
	if len(commits) == 0 {
		return nil
	}
	for _, c := range commits {
		if c.State == nil || c.State.DeviceID == "" {
			return fmt.Errorf("commit without device: %w", scheduler.ErrInvalid)
		}
	}
	// The state to store per device (the last one committed), in ID order
	// so that concurrent commits lock rows in one order.
	last := make(map[string]int, len(commits))
	for i, c := range commits {
		last[c.State.DeviceID] = i
	}
	ids := make([]string, 0, len(last))
	for id := range last {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	revs := make([]int64, len(ids))
	dues := make([]any, len(ids))
	states := make([]string, len(ids))
	for i, id := range ids {
		st := *commits[last[id]].State
		st.Rev++
		b, err := json.Marshal(&st)
		if err != nil {
			return fmt.Errorf("encode update state %s: %w", id, err)
		}
		revs[i], dues[i], states[i] = int64(st.Rev), nanosArg(st.NextDue), string(b)
	}
	var (
		histIDs     []string
		histEntries []string
	)
	for _, c := range commits {
		for _, h := range c.History {
			b, err := json.Marshal(h)
			if err != nil {
				return fmt.Errorf("encode history of %s: %w", c.State.DeviceID, err)
			}
			histIDs, histEntries = append(histIDs, c.State.DeviceID), append(histEntries, string(b))
		}
	}

	var conflict *scheduler.ConflictError
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		conflict = nil
		rows, err := tx.Query(ctx, `SELECT device_id, rev FROM ms_states WHERE device_id = ANY($1) ORDER BY device_id FOR UPDATE`, ids)
		if err != nil {
			return fmt.Errorf("lock update states: %w", err)
		}
		stored := make(map[string]uint64, len(ids))
		err = forEachRow(rows, func(row pgx.CollectableRow) error {
			var (
				id  string
				rev int64
			)
			if err := row.Scan(&id, &rev); err != nil {
				return err
			}
			stored[id] = uint64(rev)
			return nil
		})
		if err != nil {
			return fmt.Errorf("lock update states: %w", err)
		}
		var conflicts []string
		for _, c := range commits {
			if stored[c.State.DeviceID] != c.State.Rev {
				conflicts = append(conflicts, c.State.DeviceID)
			}
		}
		if len(conflicts) == 0 {
			written := make(map[string]bool, len(ids))
			rows, err := tx.Query(ctx, writeStatesSQL, ids, revs, dues, states)
			if err != nil {
				return fmt.Errorf("write update states: %w", err)
			}
			err = forEachRow(rows, func(row pgx.CollectableRow) error {
				var id string
				if err := row.Scan(&id); err != nil {
					return err
				}
				written[id] = true
				return nil
			})
			if err != nil {
				return fmt.Errorf("write update states: %w", err)
			}
			// A state created by another transaction after the check.
			for _, c := range commits {
				if !written[c.State.DeviceID] {
					conflicts = append(conflicts, c.State.DeviceID)
				}
			}
		}
		if len(conflicts) > 0 {
			conflict = &scheduler.ConflictError{IDs: conflicts}
			return conflict
		}
		if len(histIDs) > 0 {
			if _, err := tx.Exec(ctx, `INSERT INTO ms_history (device_id, entry)
				SELECT u.id, u.entry::json FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(id, entry, n)
				ORDER BY u.n`, histIDs, histEntries); err != nil {
				return fmt.Errorf("write history: %w", err)
			}
		}
		if err := enqueueCommitWebhooks(ctx, tx, commits, now); err != nil {
			return err
		}
		return queueCommands(ctx, tx, commits, now)
	})
	switch {
	case conflict != nil:
		return conflict
	case err != nil:
		return fmt.Errorf("commit update states: %w", err)
	}
	return nil
}

// queueCommands queues the commits' commands, in order, with the statement
// Enqueue uses (enqueueSQL), pipelined in one round trip. An unknown
// enrollment or a UUID already used fails it as it fails Enqueue.
func queueCommands(ctx context.Context, tx pgx.Tx, commits []scheduler.Commit, now time.Time) error {
	hist, err := historyJSON(mdm.StatusEvent{Status: mdm.StatusQueued, At: now})
	if err != nil {
		return err
	}
	var (
		b    pgx.Batch
		cmds []*mdm.Command
	)
	for _, c := range commits {
		for _, cmd := range c.Commands {
			raw := cmd.Raw
			if raw == nil {
				raw = []byte{}
			}
			b.Queue(enqueueSQL, []string{c.State.DeviceID}, cmd.UUID, cmd.RequestType, raw, ts(now), hist, false)
			cmds = append(cmds, cmd)
		}
	}
	if len(cmds) == 0 {
		return nil
	}
	br := tx.SendBatch(ctx, &b)
	for i, cmd := range cmds {
		_, err := br.Exec()
		switch {
		case err == nil:
			continue
		case foreignKeyViolation(err):
			err = fmt.Errorf("command %s for %s: enrollment %w", cmd.UUID, commitOf(commits, i), storage.ErrNotFound)
		case uniqueViolation(err, ""):
			err = fmt.Errorf("command %s for %s: %w", cmd.UUID, commitOf(commits, i), storage.ErrExists)
		default:
			err = fmt.Errorf("enqueue %s: %w", cmd.UUID, err)
		}
		br.Close()
		return err
	}
	return br.Close()
}

// commitOf is the device of the i-th command of commits.
func commitOf(commits []scheduler.Commit, i int) string {
	for _, c := range commits {
		if i < len(c.Commands) {
			return c.State.DeviceID
		}
		i -= len(c.Commands)
	}
	return ""
}

// History implements scheduler.StateStore.
func (s *Store) History(ctx context.Context, id string, limit int) ([]scheduler.Transition, error) {
	rows, err := s.pool.Query(ctx, `SELECT entry FROM (
		SELECT seq, entry FROM ms_history WHERE device_id = $1 ORDER BY seq DESC LIMIT $2) h ORDER BY seq`, id, limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("read history of %s: %w", id, err)
	}
	var out []scheduler.Transition
	err = forEachRow(rows, func(row pgx.CollectableRow) error {
		var (
			raw []byte
			t   scheduler.Transition
		)
		if err := row.Scan(&raw); err != nil {
			return err
		}
		if err := json.Unmarshal(raw, &t); err != nil {
			return fmt.Errorf("decode history entry: %w", err)
		}
		out = append(out, t)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read history of %s: %w", id, err)
	}
	return out, nil
}

// Audit implements scheduler.AuditLog.
func (s *Store) Audit(ctx context.Context, after uint64, limit int) ([]scheduler.AuditEntry, error) {
	rows, err := s.pool.Query(ctx, `SELECT seq, entry FROM ms_audit WHERE seq > $1 ORDER BY seq LIMIT $2`, int64(after), limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	var out []scheduler.AuditEntry
	err = forEachRow(rows, func(row pgx.CollectableRow) error {
		var (
			seq int64
			raw []byte
			a   scheduler.AuditEntry
		)
		if err := row.Scan(&seq, &raw); err != nil {
			return err
		}
		if err := json.Unmarshal(raw, &a); err != nil {
			return fmt.Errorf("decode audit entry %d: %w", seq, err)
		}
		a.Seq = uint64(seq)
		out = append(out, a)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	return out, nil
}

// forEachRow calls fn for every row and closes rows.
func forEachRow(rows pgx.Rows, fn func(pgx.CollectableRow) error) error {
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
