// Package migrate moves a Sundial installation from the embedded bbolt
// backend to PostgreSQL: devices with their certificate bindings, push,
// agent and last-seen state; command queues and command records (bodies,
// results and status history, in FIFO order); API keys; one-time
// challenges; declarative records and their history; and the Managed OS
// engine's groups, memberships, policies, exceptions, update states and
// history, and audit log; the release catalog's synced feeds, their poll
// state and the releases added by hand; the enrollment guards (bound
// certificate expiry, re-enrollment approvals, binding history); and the
// Apple Business Manager data (ABM devices, sync cursors, DEP servers with
// their keys and tokens still sealed); the rollout pauses and ring plans
// (their rings' start and promotions); the webhook endpoints (secrets still
// sealed), pending deliveries and the ledger of events emitted once; the
// daily compliance and evidence days; the forecast marks; and each
// declarative record's status items. Leases, the indexes bbolt rebuilds
// and bbolt's own meta data are not copied (docs/operations.md).
//
// Records keep their IDs, sequence numbers and timestamps (PostgreSQL
// timestamptz columns keep microseconds; times stored in JSON keep
// nanoseconds). The copy runs in one PostgreSQL transaction into an empty
// database, and is verified by counting every kind on both sides before it
// commits: a failed or inconsistent copy leaves the target empty.
//
// The bbolt file must not be in use (a running server holds its lock), so
// the source does not change during the copy.
package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/bolt"
	"github.com/sundial-mdm/sundial/storage/migrate/record"
	"github.com/sundial-mdm/sundial/storage/pgsql"
)

// ErrCountMismatch is returned when the counts of the target differ from
// the source's after the copy (the report says where); nothing is written.
var ErrCountMismatch = errors.New("record counts differ between source and target")

// ErrTargetNotEmpty is returned when the target already holds records.
var ErrTargetNotEmpty = pgsql.ErrNotEmpty

// Source is the installation copied from (*bolt.Store). Each Export
// method calls fn for every record of its kind, in order.
type Source interface {
	Counts(ctx context.Context) (record.Counts, error)
	ExportDevices(ctx context.Context, fn func(*mdm.Device) error) error
	ExportCommands(ctx context.Context, fn func(record.Command) error) error
	ExportAPIKeys(ctx context.Context, fn func(storage.APIKey) error) error
	ExportChallenges(ctx context.Context, fn func(record.Challenge) error) error
	ExportAgents(ctx context.Context, fn func(record.Agent) error) error
	ExportDDM(ctx context.Context, fn func(record.DDM) error) error
	ExportGroups(ctx context.Context, fn func(scheduler.Group) error) error
	ExportMemberships(ctx context.Context, fn func(record.Membership) error) error
	ExportPolicies(ctx context.Context, fn func(scheduler.PolicyRecord) error) error
	ExportExceptions(ctx context.Context, fn func(scheduler.ExceptionRecord) error) error
	ExportStates(ctx context.Context, fn func(*scheduler.State) error) error
	ExportHistory(ctx context.Context, fn func(record.HistoryEntry) error) error
	ExportAudit(ctx context.Context, fn func(scheduler.AuditEntry) error) error
	ExportCatalog(ctx context.Context, kind string, fn func(record.CatalogItem) error) error
	ExportComplianceDays(ctx context.Context, fn func(storage.ComplianceDay) error) error
	ExportWebhookEndpoints(ctx context.Context, fn func(storage.WebhookEndpoint) error) error
	ExportWebhookOutbox(ctx context.Context, fn func(storage.WebhookDelivery) error) error
	ExportWebhookOnce(ctx context.Context, fn func(record.OnceEntry) error) error
}

// Target is the installation copied to (*pgsql.Store).
type Target interface {
	Import(ctx context.Context, fn func(im *pgsql.Importer) error) error
}

// Progress is told, after every batch, how many records of a kind are
// copied out of how many. It may be nil.
type Progress func(kind string, done, total int)

// BatchSize is how many records go into the target at once.
const BatchSize = 1000

// KindReport is one kind's count in the source, how many were copied and
// the count in the target.
type KindReport struct {
	Kind   string `json:"kind"`
	Source int    `json:"source"`
	Copied int    `json:"copied"`
	Target int    `json:"target"`
}

// Report is the outcome of Run: a line per kind (record.Kinds order) and
// the differences found, if any.
type Report struct {
	Kinds       []KindReport `json:"kinds"`
	Differences []string     `json:"differences,omitempty"`
}

// String renders the report as a table.
func (r Report) String() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "kind\tsource\tcopied\ttarget\t")
	for _, k := range r.Kinds {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t\n", k.Kind, k.Source, k.Copied, k.Target)
	}
	w.Flush()
	for _, d := range r.Differences {
		fmt.Fprintf(&b, "difference: %s\n", d)
	}
	return b.String()
}

// Run copies everything from `from` into the empty `to` and verifies the
// counts of every kind. On ErrCountMismatch the report says which kinds
// differ; on any error nothing is written to `to`.
func Run(ctx context.Context, from Source, to Target, progress Progress) (Report, error) {
	if progress == nil {
		progress = func(string, int, int) {}
	}
	src, err := from.Counts(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("count source records: %w", err)
	}
	copied := record.Counts{}
	var report Report
	err = to.Import(ctx, func(im *pgsql.Importer) error {
		steps := []func() error{
			func() error {
				return copyKind(ctx, record.Devices, src, copied, progress, from.ExportDevices, im.Devices, func(d *mdm.Device) {
					if d.CertHash != "" {
						copied[record.CertBindings]++
					}
					if !d.LastSeen.IsZero() {
						copied[record.LastSeen]++
					}
					if !d.LastPush.At.IsZero() {
						copied[record.PushStates]++
					}
				})
			},
			func() error {
				return copyKind(ctx, record.Commands, src, copied, progress, from.ExportCommands, im.Commands, func(c record.Command) {
					if c.Queued {
						copied[record.QueuedCommands]++
						if c.NotNow {
							copied[record.NotNowCommands]++
						}
					}
				})
			},
			func() error {
				return copyKind(ctx, record.APIKeys, src, copied, progress, from.ExportAPIKeys, im.APIKeys, nil)
			},
			func() error {
				return copyKind(ctx, record.Challenges, src, copied, progress, from.ExportChallenges, im.Challenges, nil)
			},
			func() error {
				return copyKind(ctx, record.Agents, src, copied, progress, from.ExportAgents, im.Agents, func(a record.Agent) {
					copied[record.AgentEvents] += len(a.State.Events)
				})
			},
			func() error {
				return copyKind(ctx, record.DDMRecords, src, copied, progress, from.ExportDDM, im.DDM, func(r record.DDM) {
					copied[record.DDMEvents] += len(r.History)
					copied[record.DDMItems] += ddmItems(r.Record)
				})
			},
			func() error {
				return copyKind(ctx, record.Groups, src, copied, progress, from.ExportGroups, im.Groups, nil)
			},
			func() error {
				return copyKind(ctx, record.Memberships, src, copied, progress, from.ExportMemberships, im.Memberships, nil)
			},
			func() error {
				return copyKind(ctx, record.Policies, src, copied, progress, from.ExportPolicies, im.Policies, nil)
			},
			func() error {
				return copyKind(ctx, record.Exceptions, src, copied, progress, from.ExportExceptions, im.Exceptions, nil)
			},
			func() error {
				return copyKind(ctx, record.UpdateStates, src, copied, progress, from.ExportStates, im.States, nil)
			},
			func() error {
				return copyKind(ctx, record.UpdateHistory, src, copied, progress, from.ExportHistory, im.History, nil)
			},
			func() error {
				return copyKind(ctx, record.AuditLog, src, copied, progress, from.ExportAudit, im.Audit, nil)
			},
		}
		for _, kind := range record.RawKinds {
			steps = append(steps, func() error {
				export := func(ctx context.Context, fn func(record.CatalogItem) error) error {
					return from.ExportCatalog(ctx, kind, fn)
				}
				load := func(ctx context.Context, items []record.CatalogItem) error { return im.Catalog(ctx, kind, items) }
				return copyKind(ctx, kind, src, copied, progress, export, load, nil)
			})
		}
		steps = append(steps,
			func() error {
				return copyKind(ctx, record.ComplianceDays, src, copied, progress, from.ExportComplianceDays, im.ComplianceDays, nil)
			},
			// Endpoints before the deliveries addressed to them.
			func() error {
				return copyKind(ctx, record.WebhookEndpoints, src, copied, progress, from.ExportWebhookEndpoints, im.WebhookEndpoints, nil)
			},
			func() error {
				return copyKind(ctx, record.WebhookOutbox, src, copied, progress, from.ExportWebhookOutbox, im.WebhookOutbox, nil)
			},
			func() error {
				return copyKind(ctx, record.WebhookOnce, src, copied, progress, from.ExportWebhookOnce, im.WebhookOnce, nil)
			},
		)
		for _, step := range steps {
			if err := step(); err != nil {
				return err
			}
		}
		dst, err := im.Counts(ctx)
		if err != nil {
			return fmt.Errorf("count target records: %w", err)
		}
		report = compare(src, copied, dst)
		if len(report.Differences) > 0 {
			return fmt.Errorf("%w: %s", ErrCountMismatch, strings.Join(report.Differences, "; "))
		}
		return nil
	})
	if err != nil {
		return report, fmt.Errorf("migrate: %w", err)
	}
	return report, nil
}

// ddmItems is how many status items a declarative record carries, for the
// count of DDM items copied (-1 if the record is unreadable, which the
// import refuses anyway).
func ddmItems(rec json.RawMessage) int {
	if rec == nil {
		return 0
	}
	var r struct {
		Status struct {
			Items map[string]json.RawMessage `json:"items"`
		} `json:"status"`
	}
	if err := json.Unmarshal(rec, &r); err != nil {
		return -1
	}
	return len(r.Status.Items)
}

// compare builds the report of every kind in record.Kinds.
func compare(src, copied, dst record.Counts) Report {
	var r Report
	for _, k := range record.Kinds {
		kr := KindReport{Kind: k, Source: src[k], Copied: copied[k], Target: dst[k]}
		r.Kinds = append(r.Kinds, kr)
		if kr.Source != kr.Copied || kr.Source != kr.Target {
			r.Differences = append(r.Differences, fmt.Sprintf("%s: %d in the source, %d copied, %d in the target", k, kr.Source, kr.Copied, kr.Target))
		}
	}
	return r
}

// copyKind streams one kind from export into load in batches of BatchSize,
// counting the records (and, through tally, what they carry) in copied.
func copyKind[T any](ctx context.Context, kind string, src, copied record.Counts, progress Progress,
	export func(context.Context, func(T) error) error, load func(context.Context, []T) error, tally func(T)) error {
	total := src[kind]
	batch := make([]T, 0, min(BatchSize, max(total, 1)))
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := load(ctx, batch); err != nil {
			return err
		}
		copied[kind] += len(batch)
		clear(batch)
		batch = batch[:0]
		progress(kind, copied[kind], total)
		return nil
	}
	progress(kind, 0, total)
	err := export(ctx, func(v T) error {
		batch = append(batch, v)
		if tally != nil {
			tally(v)
		}
		if len(batch) >= BatchSize {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return fmt.Errorf("copy %s: %w", kind, err)
	}
	return nil
}

var (
	_ Source = (*bolt.Store)(nil)
	_ Target = (*pgsql.Store)(nil)
)
