package pgsql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/ddm"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/migrate/record"
)

// ErrNotEmpty is returned by Import when the database already holds
// records: an installation is only ever moved into an empty one.
var ErrNotEmpty = errors.New("database is not empty")

// countsSQL counts the records of every kind, in the order of countKinds.
const countsSQL = `SELECT
	(SELECT count(*) FROM devices),
	(SELECT count(cert_hash) FROM devices),
	(SELECT count(last_seen) FROM devices),
	(SELECT count(push_at) FROM devices),
	(SELECT count(*) FROM commands),
	(SELECT count(*) FROM command_queue),
	(SELECT count(*) FROM command_queue WHERE not_now),
	(SELECT count(*) FROM api_keys),
	(SELECT count(*) FROM challenges),
	(SELECT count(*) FROM agents),
	(SELECT count(*) FROM agent_events),
	(SELECT count(*) FROM ddm_records),
	(SELECT count(*) FROM ddm_history),
	(SELECT count(*) FROM ms_groups),
	(SELECT count(*) FROM ms_members),
	(SELECT count(*) FROM ms_policies),
	(SELECT count(*) FROM ms_exceptions),
	(SELECT count(*) FROM ms_states),
	(SELECT count(*) FROM ms_history),
	(SELECT count(*) FROM ms_audit),
	(SELECT count(*) FROM catalog_feeds),
	(SELECT count(*) FROM catalog_polls),
	(SELECT count(*) FROM catalog_manual),
	(SELECT count(*) FROM enrollment_guards),
	(SELECT count(*) FROM ade_devices),
	(SELECT count(*) FROM ade_cursors),
	(SELECT count(*) FROM dep_servers),
	(SELECT count(*) FROM ddm_items),
	(SELECT count(*) FROM ms_pauses),
	(SELECT count(*) FROM ms_ring_plans),
	(SELECT count(*) FROM evidence_days),
	(SELECT count(*) FROM forecast_marks),
	(SELECT count(*) FROM compliance_days),
	(SELECT count(*) FROM webhook_endpoints),
	(SELECT count(*) FROM webhook_outbox),
	(SELECT count(*) FROM webhook_once)`

var countKinds = []string{
	record.Devices, record.CertBindings, record.LastSeen, record.PushStates,
	record.Commands, record.QueuedCommands, record.NotNowCommands,
	record.APIKeys, record.Challenges, record.Agents, record.AgentEvents, record.DDMRecords, record.DDMEvents,
	record.Groups, record.Memberships, record.Policies, record.Exceptions,
	record.UpdateStates, record.UpdateHistory, record.AuditLog,
	record.CatalogFeeds, record.CatalogPolls, record.ManualReleases,
	record.EnrollmentGuards, record.ADEDevices, record.ADECursors, record.DEPServers,
	record.DDMItems, record.RolloutPauses, record.RingPlans, record.EvidenceDays, record.ForecastMarks,
	record.ComplianceDays, record.WebhookEndpoints, record.WebhookOutbox, record.WebhookOnce,
}

func counts(ctx context.Context, q querier) (record.Counts, error) {
	ns := make([]int64, len(countKinds))
	dst := make([]any, len(ns))
	for i := range ns {
		dst[i] = &ns[i]
	}
	if err := q.QueryRow(ctx, countsSQL).Scan(dst...); err != nil {
		return nil, fmt.Errorf("count records: %w", err)
	}
	c := make(record.Counts, len(ns))
	for i, k := range countKinds {
		c[k] = int(ns[i])
	}
	return c, nil
}

// Counts returns the number of records of every kind in record.Kinds.
func (s *Store) Counts(ctx context.Context) (record.Counts, error) { return counts(ctx, s.pool) }

// Importer bulk-loads exported records (COPY) into the database, within
// the transaction of one Import. Records keep their IDs, sequence numbers
// and timestamps (at the microsecond precision of timestamptz; times kept
// in JSON keep their nanoseconds). Kinds must be loaded in record.Kinds
// order: commands and agents need their device, memberships their group.
type Importer struct {
	tx pgx.Tx
}

// sequences are the serial columns Import moves past the imported values.
var sequences = [][2]string{{"commands", "seq"}, {"ms_history", "seq"}, {"ms_audit", "seq"}}

// Import runs fn with an Importer in one transaction. It refuses a
// database that holds any record (ErrNotEmpty). After fn it moves the
// sequences past the imported values (so new commands queue after the
// imported ones) and commits; if fn or anything else fails, nothing is
// written. A transaction-scoped advisory lock keeps two imports into one
// schema from running at once.
func (s *Store) Import(ctx context.Context, fn func(im *Importer) error) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('sundial_import ' || coalesce(current_schema(), ''), 0))`); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		c, err := counts(ctx, tx)
		if err != nil {
			return err
		}
		if !c.Empty() {
			var kinds []string
			for _, k := range countKinds {
				if c[k] > 0 {
					kinds = append(kinds, fmt.Sprintf("%d %s", c[k], k))
				}
			}
			return fmt.Errorf("%w: it holds %v", ErrNotEmpty, kinds)
		}
		if err := fn(&Importer{tx: tx}); err != nil {
			return err
		}
		for _, sq := range sequences {
			table := pgx.Identifier{sq[0]}.Sanitize()
			if _, err := tx.Exec(ctx, `SELECT setval(pg_get_serial_sequence($1, $2), coalesce((SELECT max(`+pgx.Identifier{sq[1]}.Sanitize()+`) FROM `+table+`), 0) + 1, false)`,
				sq[0], sq[1]); err != nil {
				return fmt.Errorf("advance sequence of %s.%s: %w", sq[0], sq[1], err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	return nil
}

// Counts returns the number of records of every kind as the import
// transaction sees them.
func (im *Importer) Counts(ctx context.Context) (record.Counts, error) { return counts(ctx, im.tx) }

func (im *Importer) copy(ctx context.Context, table string, cols []string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	n, err := im.tx.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromRows(rows))
	if err != nil {
		return fmt.Errorf("copy into %s: %w", table, err)
	}
	if int(n) != len(rows) {
		return fmt.Errorf("copy into %s: %d of %d rows written", table, n, len(rows))
	}
	return nil
}

// nullString is s, or NULL when empty.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Devices loads enrollments with their certificate binding, last-seen
// time and push state.
func (im *Importer) Devices(ctx context.Context, ds []*mdm.Device) error {
	rows := make([][]any, 0, len(ds))
	for _, d := range ds {
		inv, err := json.Marshal(d.Inventory)
		if err != nil {
			return fmt.Errorf("encode inventory of %s: %w", d.ID, err)
		}
		rows = append(rows, []any{d.ID, d.ParentID, d.UDID, d.Topic, d.SerialNumber, d.ProductName, d.Model, d.ModelName,
			d.DeviceName, d.OSVersion, d.BuildVersion, d.Enabled, nullString(d.CertHash), ts(d.AuthenticatedAt), ts(d.EnrolledAt),
			ts(d.CheckedOutAt), ts(d.LastSeen), d.PushToken, d.PushMagic, d.TokenInvalid, d.BootstrapToken, ts(d.BootstrapAt),
			ts(d.LastPush.At), d.LastPush.Outcome, d.LastPush.Reason, int32(d.LastPush.Attempt), ts(d.LastPush.NextRepush),
			string(inv), ts(d.InventoryAt), ts(d.InventoryRequestedAt)})
	}
	return im.copy(ctx, "devices", []string{"id", "parent_id", "udid", "topic", "serial_number", "product_name", "model", "model_name",
		"device_name", "os_version", "build_version", "enabled", "cert_hash", "authenticated_at", "enrolled_at",
		"checked_out_at", "last_seen", "push_token", "push_magic", "token_invalid", "bootstrap_token", "bootstrap_at",
		"push_at", "push_outcome", "push_reason", "push_attempt", "next_repush",
		"inventory", "inventory_at", "inventory_requested_at"}, rows)
}

// Commands loads command records with their sequence numbers, and queues
// those still queued (with their NotNow mark).
func (im *Importer) Commands(ctx context.Context, cs []record.Command) error {
	rows := make([][]any, 0, len(cs))
	var queue [][]any
	for _, c := range cs {
		r := c.Record
		var chain any
		if len(r.ErrorChain) > 0 {
			b, err := json.Marshal(r.ErrorChain)
			if err != nil {
				return fmt.Errorf("encode error chain of %s: %w", r.UUID, err)
			}
			chain = string(b)
		}
		events := r.History
		if events == nil {
			events = []mdm.StatusEvent{}
		}
		hist, err := historyJSON(events...)
		if err != nil {
			return err
		}
		raw := r.Raw
		if raw == nil {
			raw = []byte{}
		}
		rows = append(rows, []any{int64(r.Seq), r.EnrollmentID, r.UUID, r.RequestType, raw, r.Status,
			ts(r.QueuedAt), ts(r.UpdatedAt), int32(r.NotNowCount), chain, r.Result, hist})
		if c.Queued {
			queue = append(queue, []any{r.EnrollmentID, int64(r.Seq), c.NotNow})
		}
	}
	err := im.copy(ctx, "commands", []string{"seq", "enrollment_id", "uuid", "request_type", "raw", "status",
		"queued_at", "updated_at", "not_now_count", "error_chain", "result", "history"}, rows)
	if err != nil {
		return err
	}
	return im.copy(ctx, "command_queue", []string{"enrollment_id", "seq", "not_now"}, queue)
}

// APIKeys loads API keys with their hashes.
func (im *Importer) APIKeys(ctx context.Context, ks []storage.APIKey) error {
	rows := make([][]any, 0, len(ks))
	for _, k := range ks {
		rows = append(rows, []any{k.ID, k.Name, k.Hash, ts(k.CreatedAt), ts(k.RevokedAt), k.Role})
	}
	return im.copy(ctx, "api_keys", []string{"id", "name", "hash", "created_at", "revoked_at", "role"}, rows)
}

// Challenges loads one-time SCEP challenges.
func (im *Importer) Challenges(ctx context.Context, cs []record.Challenge) error {
	rows := make([][]any, 0, len(cs))
	for _, c := range cs {
		rows = append(rows, []any{c.Hash, c.Expires})
	}
	return im.copy(ctx, "challenges", []string{"key", "expires_at"}, rows)
}

// Agents loads agents and their events (numbered from 1, the newest
// storage.MaxAgentEvents).
func (im *Importer) Agents(ctx context.Context, as []record.Agent) error {
	rows := make([][]any, 0, len(as))
	var events [][]any
	for _, a := range as {
		evs := a.State.Events
		if over := len(evs) - storage.MaxAgentEvents; over > 0 {
			evs = evs[over:]
		}
		rows = append(rows, []any{a.ID, a.SecretHash, ts(a.State.SecretSetAt), a.State.TimeZone, ts(a.State.LastReportAt), int64(len(evs))})
		for i, ev := range evs {
			b, err := json.Marshal(ev)
			if err != nil {
				return fmt.Errorf("encode agent event of %s: %w", a.ID, err)
			}
			events = append(events, []any{a.ID, int64(i + 1), string(b)})
		}
	}
	err := im.copy(ctx, "agents", []string{"id", "secret_hash", "secret_set_at", "time_zone", "last_report_at", "event_seq"}, rows)
	if err != nil {
		return err
	}
	return im.copy(ctx, "agent_events", []string{"id", "seq", "event"}, events)
}

// DDM loads declarative records, each status item in its own row with its
// JSON text kept byte for byte, and their status history (numbered from 1, the newest ddm.HistoryLimit).
func (im *Importer) DDM(ctx context.Context, rs []record.DDM) error {
	rows := make([][]any, 0, len(rs))
	var events, items [][]any
	for _, r := range rs {
		rec, err := decodeDDM(r.ID, r.Record)
		if err != nil {
			return err
		}
		hist := r.History
		if over := len(hist) - ddm.HistoryLimit; over > 0 {
			hist = hist[over:]
		}
		var raw any // NULL when there is no record
		if r.Record != nil {
			// The items go a row each into ddm_items, as stored.
			base, err := encodeDDMBase(r.ID, rec)
			if err != nil {
				return err
			}
			raw = base
			for name, val := range rec.Status.Items {
				items = append(items, []any{r.ID, []byte(name), []byte(val)})
			}
		}
		rows = append(rows, []any{r.ID, raw, ddmDue(rec), int64(len(hist))})
		for i, ev := range hist {
			if !json.Valid(ev) {
				return fmt.Errorf("status event of %s: invalid JSON", r.ID)
			}
			events = append(events, []any{r.ID, int64(i + 1), []byte(ev)})
		}
	}
	err := im.copy(ctx, "ddm_records", []string{"id", "record", "due_at", "hist_seq"}, rows)
	if err != nil {
		return err
	}
	if err := im.copy(ctx, "ddm_items", []string{"id", "name", "value"}, items); err != nil {
		return err
	}
	return im.copy(ctx, "ddm_history", []string{"id", "seq", "event"}, events)
}

// Groups loads groups.
func (im *Importer) Groups(ctx context.Context, gs []scheduler.Group) error {
	rows := make([][]any, 0, len(gs))
	for _, g := range gs {
		if !scheduler.ValidGroupID(g.ID) {
			return fmt.Errorf("group id %q: %w", g.ID, scheduler.ErrInvalid)
		}
		b, err := json.Marshal(g)
		if err != nil {
			return fmt.Errorf("encode group %s: %w", g.ID, err)
		}
		rows = append(rows, []any{g.ID, string(b)})
	}
	return im.copy(ctx, "ms_groups", []string{"id", "record"}, rows)
}

// Memberships loads group memberships; their groups must be loaded.
func (im *Importer) Memberships(ctx context.Context, ms []record.Membership) error {
	rows := make([][]any, 0, len(ms))
	for _, m := range ms {
		rows = append(rows, []any{m.DeviceID, m.GroupID})
	}
	return im.copy(ctx, "ms_members", []string{"device_id", "group_id"}, rows)
}

// Policies loads policies with their revisions.
func (im *Importer) Policies(ctx context.Context, ps []scheduler.PolicyRecord) error {
	rows := make([][]any, 0, len(ps))
	for _, p := range ps {
		b, err := json.Marshal(p)
		if err != nil {
			return fmt.Errorf("encode policy of %s: %w", p.GroupID, err)
		}
		rows = append(rows, []any{p.GroupID, int64(p.Revision), string(b)})
	}
	return im.copy(ctx, "ms_policies", []string{"group_id", "revision", "record"}, rows)
}

// Exceptions loads exceptions.
func (im *Importer) Exceptions(ctx context.Context, es []scheduler.ExceptionRecord) error {
	rows := make([][]any, 0, len(es))
	for _, e := range es {
		b, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("encode %s exception %s: %w", e.Scope, e.ID, err)
		}
		rows = append(rows, []any{string(e.Scope), e.ID, string(b)})
	}
	return im.copy(ctx, "ms_exceptions", []string{"scope", "id", "record"}, rows)
}

// States loads update states with their revisions and due times.
func (im *Importer) States(ctx context.Context, sts []*scheduler.State) error {
	rows := make([][]any, 0, len(sts))
	for _, st := range sts {
		if st.DeviceID == "" {
			return fmt.Errorf("update state without device: %w", scheduler.ErrInvalid)
		}
		b, err := json.Marshal(st)
		if err != nil {
			return fmt.Errorf("encode update state %s: %w", st.DeviceID, err)
		}
		rows = append(rows, []any{st.DeviceID, int64(st.Rev), nanosArg(st.NextDue), string(b)})
	}
	return im.copy(ctx, "ms_states", []string{"device_id", "rev", "next_due", "state"}, rows)
}

// History loads update history entries with their sequence numbers.
func (im *Importer) History(ctx context.Context, es []record.HistoryEntry) error {
	rows := make([][]any, 0, len(es))
	for _, e := range es {
		b, err := json.Marshal(e.Transition)
		if err != nil {
			return fmt.Errorf("encode history of %s: %w", e.DeviceID, err)
		}
		rows = append(rows, []any{e.DeviceID, int64(e.Seq), string(b)})
	}
	return im.copy(ctx, "ms_history", []string{"device_id", "seq", "entry"}, rows)
}

// Audit loads audit entries with their sequence numbers.
func (im *Importer) Audit(ctx context.Context, as []scheduler.AuditEntry) error {
	rows := make([][]any, 0, len(as))
	for _, a := range as {
		b, err := json.Marshal(a)
		if err != nil {
			return fmt.Errorf("encode audit entry %d: %w", a.Seq, err)
		}
		rows = append(rows, []any{int64(a.Seq), string(b)})
	}
	return im.copy(ctx, "ms_audit", []string{"seq", "entry"}, rows)
}
