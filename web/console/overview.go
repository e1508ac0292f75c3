package console

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// SilentDays is how long a Mac may go without checking in before the
// overview lists it as needing attention.
const SilentDays = 7

// attentionRows bounds each "needs attention" list on the overview.
const attentionRows = 20

// Overview is the fleet at one instant, built from the compliance report
// the API serves (GET /api/v1/reports/compliance), so that its numbers are
// the API's.
type Overview struct {
	Report *scheduler.ComplianceReport
	// CompliancePct is Compliant / Managed in percent (0 when none is managed).
	CompliancePct float64
	Groups        []Tally
	Rings         []Tally
	Funnel        []PhaseCount
	// Next7 is the first seven days of Report.DeadlinesAhead.
	Next7 []scheduler.DayCount
	// PastDeadline, Failures: the first attentionRows of the report's.
	PastDeadline      []scheduler.DeviceBrief
	PastDeadlineTotal int
	Failures          []scheduler.FailureCount
	// Silent lists Macs that have not checked in for SilentDays.
	Silent      []scheduler.ReportRow
	SilentTotal int
	SilentDays  int
	// NoBootstrap lists Apple silicon Macs without an escrowed bootstrap token.
	NoBootstrap      []scheduler.ReportRow
	NoBootstrapTotal int
	// Newest is the catalog's newest release; CatalogAgeDays how many days
	// ago Apple posted it.
	Newest         *catalog.Release
	CatalogAgeDays int
	Chart          Chart
	// History charts compliance per group over the last ChartDays days
	// (nil without stored days).
	History *LineChart
	// Rollout is the pauses, readiness forecast and ring gates (rollout.go).
	Rollout *Rollout
}

// Tally is the compliance of one group or ring.
type Tally struct {
	Key       string
	Name      string
	Devices   int
	Managed   int
	Compliant int
	Pct       float64
}

// PhaseCount is one step of the phase funnel.
type PhaseCount struct {
	Phase softwareupdate.Phase
	Label string
	Count int
}

// funnel is the order and wording of the funnel: the road to compliance,
// then the side tracks.
var funnel = []struct {
	phase softwareupdate.Phase
	label string
}{
	{softwareupdate.PhasePending, "pending"},
	{softwareupdate.PhaseNotify, "notify"},
	{softwareupdate.PhaseCountdown, "countdown"},
	{softwareupdate.PhaseEnforce, "enforce"},
	{softwareupdate.PhaseCompliant, "compliant"},
	{softwareupdate.PhaseFailed, "failed"},
	{softwareupdate.PhaseExempt, "deferring (exception)"},
	{softwareupdate.PhaseUnsupported, "ineligible: hardware"},
	{softwareupdate.PhaseUnknown, "ineligible: OS unknown"},
	{softwareupdate.PhaseUnmanaged, "not managed"},
	{scheduler.PhaseUnevaluated, "not evaluated yet"},
}

func pct(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return 100 * float64(n) / float64(of)
}

// managed says whether a phase counts toward Managed, as the report counts.
func managed(p softwareupdate.Phase) bool {
	return p != softwareupdate.PhaseUnmanaged && p != scheduler.PhaseUnevaluated
}

// BuildOverview computes the overview from a report with rows, the groups
// and their policies (for ring offsets) and the catalog. It is pure.
func BuildOverview(now time.Time, rep *scheduler.ComplianceReport, groups []scheduler.Group, policies map[string]softwareupdate.Policy, rels []catalog.Release) *Overview {
	o := &Overview{Report: rep, CompliancePct: pct(rep.Compliant, rep.Managed), SilentDays: SilentDays}
	for _, f := range funnel {
		o.Funnel = append(o.Funnel, PhaseCount{Phase: f.phase, Label: f.label, Count: rep.ByPhase[f.phase]})
	}
	o.Next7 = rep.DeadlinesAhead[:min(7, len(rep.DeadlinesAhead))]
	o.PastDeadlineTotal = len(rep.PastDeadline)
	o.PastDeadline = rep.PastDeadline[:min(attentionRows, len(rep.PastDeadline))]
	o.Failures = rep.Failures

	byGroup := map[string]*Tally{}
	for _, g := range groups {
		byGroup[g.ID] = &Tally{Key: g.ID, Name: cmp.Or(g.Name, g.ID)}
	}
	byRing := map[int]*Tally{}
	silentBefore := now.Add(-SilentDays * 24 * time.Hour)
	for i := range rep.Rows {
		row := &rep.Rows[i]
		g := byGroup[row.GroupID]
		if g == nil {
			g = &Tally{Key: row.GroupID, Name: row.GroupID}
			byGroup[row.GroupID] = g
		}
		tallies := []*Tally{g}
		// Rings are the ring offsets of policies; a group without one has none.
		if p, ok := policies[row.GroupID]; ok {
			rt := byRing[p.RingOffsetDays]
			if rt == nil {
				rt = &Tally{Key: fmt.Sprint(p.RingOffsetDays), Name: fmt.Sprintf("+%d days", p.RingOffsetDays)}
				byRing[p.RingOffsetDays] = rt
			}
			tallies = append(tallies, rt)
		}
		for _, t := range tallies {
			t.Devices++
			if managed(row.Phase) {
				t.Managed++
			}
			if row.Phase == softwareupdate.PhaseCompliant {
				t.Compliant++
			}
		}
		if row.Enabled && !row.LastSeen.IsZero() && row.LastSeen.Before(silentBefore) {
			o.SilentTotal++
			if len(o.Silent) < attentionRows {
				o.Silent = append(o.Silent, *row)
			}
		}
		if row.BootstrapMissing && managed(row.Phase) {
			o.NoBootstrapTotal++
			if len(o.NoBootstrap) < attentionRows {
				o.NoBootstrap = append(o.NoBootstrap, *row)
			}
		}
	}
	for _, t := range byGroup {
		t.Pct = pct(t.Compliant, t.Managed)
		o.Groups = append(o.Groups, *t)
	}
	slices.SortFunc(o.Groups, func(a, b Tally) int { return cmp.Compare(a.Key, b.Key) })
	for ring, t := range byRing {
		t.Pct = pct(t.Compliant, t.Managed)
		t.Key = fmt.Sprint(ring)
		o.Rings = append(o.Rings, *t)
	}
	slices.SortFunc(o.Rings, func(a, b Tally) int { return cmp.Compare(ringOf(a), ringOf(b)) })
	for i := range rels {
		if rels[i].Supplemental || rels[i].PostingDate.IsZero() {
			continue
		}
		if o.Newest == nil || rels[i].PostingDate.After(o.Newest.PostingDate) {
			o.Newest = &rels[i]
		}
	}
	if o.Newest != nil {
		o.CatalogAgeDays = int(now.Sub(o.Newest.PostingDate) / (24 * time.Hour))
	}
	o.Chart = deadlineChart(o.Next7)
	return o
}

// withHistory adds the chart of compliance over time.
func (o *Overview) withHistory(days []storage.ComplianceDay, end time.Time) *Overview {
	if len(days) > 0 {
		o.History = historyChart(days, end)
	}
	return o
}

func ringOf(t Tally) int {
	var n int
	fmt.Sscan(t.Key, &n)
	return n
}

// buildSnapshot reads the fleet: the compliance report with rows, the
// groups and their policies.
func (c *Console) buildSnapshot(ctx context.Context) (*Snapshot, error) {
	rep, err := c.cfg.Reports.Compliance(ctx, true)
	if err != nil {
		return nil, err
	}
	groups, err := c.cfg.Manager.Groups(ctx)
	if err != nil {
		return nil, err
	}
	policies := map[string]softwareupdate.Policy{}
	for _, g := range groups {
		if p, err := c.cfg.Manager.Policy(ctx, g.ID); err == nil {
			policies[g.ID] = p.Policy
		}
	}
	snap := &Snapshot{Report: rep, Groups: groups, Policies: policies}
	if err := c.withForecast(ctx, snap); err != nil {
		return nil, err
	}
	if c.cfg.Days != nil {
		if snap.Days, err = c.recordDay(ctx, snap); err != nil {
			return nil, err
		}
	}
	return snap, nil
}

// recordDay stores the snapshot's compliance per group as its UTC day's
// (the day's last snapshot wins) and returns the last ChartDays days.
func (c *Console) recordDay(ctx context.Context, snap *Snapshot) ([]storage.ComplianceDay, error) {
	at := snap.Report.GeneratedAt.UTC()
	day := at.Format(time.DateOnly)
	var rows []storage.ComplianceDay
	for _, t := range BuildOverview(at, snap.Report, snap.Groups, snap.Policies, nil).Groups {
		if len(rows) == storage.MaxComplianceGroups {
			break
		}
		rows = append(rows, storage.ComplianceDay{Day: day, GroupID: t.Key, Devices: t.Devices, Managed: t.Managed, Compliant: t.Compliant})
	}
	if err := c.cfg.Days.PutComplianceDay(ctx, day, rows); err != nil {
		return nil, fmt.Errorf("record compliance of %s: %w", day, err)
	}
	return c.cfg.Days.ComplianceDays(ctx, at.AddDate(0, 0, 1-ChartDays).Format(time.DateOnly))
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, ss *session) (string, *view, error) {
	snap, err := c.snaps.get(r.Context())
	if err != nil {
		return "", nil, err
	}
	o := BuildOverview(snap.Report.GeneratedAt, snap.Report, snap.Groups, snap.Policies, c.cfg.Catalog.Releases()).
		withHistory(snap.Days, snap.Report.GeneratedAt)
	if o.Rollout, err = c.rollout(r.Context(), snap); err != nil {
		return "", nil, err
	}
	return "overview", &view{Title: "Fleet overview", Nav: "overview", Data: o}, nil
}
