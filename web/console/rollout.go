package console

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// ForecastMarks reads the Macs the scheduler leader's readiness check last
// found at risk or failing (storage.ForecastMarkStore).
type ForecastMarks interface {
	ForecastMarks(ctx context.Context) ([]storage.ForecastMark, error)
}

// Rollouts lists the ring plans and the pauses in force (scheduler.Manager).
type Rollouts interface {
	RingPlans(ctx context.Context) ([]scheduler.RingPlan, error)
	Pauses(ctx context.Context) ([]scheduler.Pause, error)
}

// GateStatuses is the scheduler's last ring-gate evaluation
// (scheduler.Scheduler.RingStatuses).
type GateStatuses interface {
	RingStatuses() map[string][]scheduler.RingStatus
}

// ForecastWindowDays is the overview's forecast window: the leader's
// readiness check (webhook.ReadinessWindowDays) looks as far ahead.
const ForecastWindowDays = 7

// forecastRefresh is how often a snapshot rebuild re-reads the marks: the
// leader rewrites them at most every 5 minutes.
const forecastRefresh = 5 * time.Minute

// topReasons bounds the reasons the overview lists.
const topReasons = 5

// readinessRows bounds the readiness page's list.
const readinessRows = 500

// ForecastSummary is the readiness forecast of the Macs whose deadline is
// within ForecastWindowDays (or has passed): those at risk or failing as
// the leader's last check found them, the rest of the window on time.
type ForecastSummary struct {
	Days     int
	OnTime   int
	AtRisk   int
	WillFail int
	// Reasons counts the failed checks behind the at-risk and failing
	// Macs, most frequent first (at most topReasons).
	Reasons []ReasonCount
}

// ReasonCount is how many Macs one cause puts at risk.
type ReasonCount struct {
	Cause string
	Count int
}

// RingRow is one ring of a plan on the overview.
type RingRow struct {
	Group     string
	State     string // "started", "held", "needs promotion", "not evaluated"
	Started   time.Time
	Compliant int
	Eligible  int
	Failed    int
	Why       string
}

// RingPlanRows is a plan with its rings, in rollout order.
type RingPlanRows struct {
	ID    string
	Gate  string
	Rings []RingRow
}

// Rollout is the overview's rollout section: pauses in force, the
// readiness forecast and the ring gates.
type Rollout struct {
	Pauses   []scheduler.Pause
	Forecast *ForecastSummary
	Plans    []RingPlanRows
}

// forecastCache keeps the marks read at most forecastRefresh ago.
type forecastCache struct {
	at    time.Time
	marks []storage.ForecastMark
}

// snapshotMarks returns the marks for a snapshot built at now, re-read
// when older than forecastRefresh (nil without a ForecastMarks source).
func (c *Console) snapshotMarks(ctx context.Context, now time.Time) ([]storage.ForecastMark, error) {
	if c.cfg.Forecasts == nil {
		return nil, nil
	}
	c.fcMu.Lock()
	defer c.fcMu.Unlock()
	if !c.fc.at.IsZero() && now.Sub(c.fc.at) < forecastRefresh && !now.Before(c.fc.at) {
		return c.fc.marks, nil
	}
	marks, err := c.cfg.Forecasts.ForecastMarks(ctx)
	if err != nil {
		return nil, err
	}
	c.fc = forecastCache{at: now, marks: marks}
	return marks, nil
}

// inWindow reports whether a report row is one the forecast covers: a Mac
// yet to reach its target whose deadline is within days of now or passed
// (or not set yet, like a Mac a ring gate holds).
func inWindow(row *scheduler.ReportRow, until time.Time) bool {
	return scheduler.Forecastable(row.Phase) && (row.Deadline.IsZero() || !row.Deadline.After(until))
}

// BuildForecast summarises the forecast of the snapshot's report from the
// leader's marks, and lists the Macs at risk or failing, worst first (at
// most limit of them, and how many there are). It is pure, and runs once
// per snapshot, not per view.
func BuildForecast(rep *scheduler.ComplianceReport, marks []storage.ForecastMark, limit int) (*ForecastSummary, []ReadinessRow, int) {
	until := rep.GeneratedAt.Add(ForecastWindowDays * 24 * time.Hour)
	f := &ForecastSummary{Days: ForecastWindowDays}
	byID := make(map[string]int, len(marks))
	for i := range marks {
		byID[marks[i].DeviceID] = i
	}
	window := 0
	causes := map[string]int{}
	// The Macs listed are sorted as a mark and report row index each, and
	// only the first limit copied out: tens of thousands of marks may be
	// at risk, and a page shows a few hundred.
	type hit struct{ mark, row int }
	var hits []hit
	for i := range rep.Rows {
		row := &rep.Rows[i]
		if !inWindow(row, until) {
			continue
		}
		window++
		// A mark of a Mac no longer in the window is left out: compliant,
		// exempt or moved out since the leader's check.
		j, ok := byID[row.DeviceID]
		if !ok {
			continue
		}
		m := &marks[j]
		if m.Forecast == string(scheduler.ForecastWillFail) {
			f.WillFail++
		} else {
			f.AtRisk++
		}
		for _, c := range m.Causes {
			causes[c]++
		}
		hits = append(hits, hit{j, i})
	}
	f.OnTime = max(0, window-f.AtRisk-f.WillFail)
	for c, n := range causes {
		f.Reasons = append(f.Reasons, ReasonCount{Cause: c, Count: n})
	}
	slices.SortFunc(f.Reasons, func(a, b ReasonCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Cause, b.Cause))
	})
	f.Reasons = f.Reasons[:min(topReasons, len(f.Reasons))]
	rank := func(f string) int {
		if f == string(scheduler.ForecastWillFail) {
			return 0
		}
		return 1
	}
	slices.SortFunc(hits, func(x, y hit) int {
		a, b := &marks[x.mark], &marks[y.mark]
		return cmp.Or(cmp.Compare(rank(a.Forecast), rank(b.Forecast)), a.Deadline.Compare(b.Deadline),
			cmp.Compare(a.DeviceID, b.DeviceID))
	})
	var rows []ReadinessRow
	for _, h := range hits[:min(limit, len(hits))] {
		row := &rep.Rows[h.row]
		rows = append(rows, ReadinessRow{Mark: marks[h.mark], Serial: row.SerialNumber, Name: row.DeviceName})
	}
	return f, rows, len(hits)
}

// withForecast adds the forecast to a snapshot being built, from the
// marks read at most forecastRefresh ago (nothing without a source).
func (c *Console) withForecast(ctx context.Context, snap *Snapshot) error {
	marks, err := c.snapshotMarks(ctx, snap.Report.GeneratedAt)
	if err != nil || c.cfg.Forecasts == nil {
		return err
	}
	snap.Forecast, snap.AtRisk, snap.AtRiskTotal = BuildForecast(snap.Report, marks, readinessRows)
	return nil
}

// BuildRingRows joins the plans with the last gate evaluation, as `sundial
// rings show` does: a plan changed since the last evaluation (or a replica
// that runs no passes) shows its rings "not evaluated".
func BuildRingRows(plans []scheduler.RingPlan, status map[string][]scheduler.RingStatus) []RingPlanRows {
	var out []RingPlanRows
	for _, p := range plans {
		st := status[p.ID]
		evaluated := len(st) == len(p.Groups)
		for i := range st {
			if evaluated && st[i].Name != p.Groups[i] {
				evaluated = false
			}
		}
		rows := RingPlanRows{ID: p.ID, Gate: gateText(p.Gate)}
		for i, g := range p.Groups {
			r := RingRow{Group: g, State: "not evaluated"}
			if i < len(p.States) {
				r.Started = p.States[i].Started
			}
			if evaluated {
				rs := st[i]
				r.Compliant, r.Eligible, r.Failed = rs.Tally.Compliant, rs.Tally.Eligible, rs.Tally.Failed
				switch {
				case rs.MayNotify:
					r.State, r.Why = "started", "gate: "+rs.Gate.Reason
				case i > 0 && rs.HeldBy == p.Groups[i-1] && st[i-1].Gate.NeedsPromotion:
					r.State, r.Why = "needs promotion", "held by "+rs.HeldBy+": "+rs.Reason
				default:
					r.State, r.Why = "held", "held by "+rs.HeldBy+": "+rs.Reason
				}
			}
			rows.Rings = append(rows.Rings, r)
		}
		out = append(out, rows)
	}
	return out
}

func gateText(g scheduler.RingGate) string {
	or := func(p *int, def int) int {
		if p == nil {
			return def
		}
		return *p
	}
	wait := int(scheduler.DefaultGateMaxWait / time.Hour)
	return fmt.Sprintf("gate ≥ %d %% compliant, ≤ %d %% failed, max wait %d h", or(g.MinCompliantPercent, scheduler.DefaultGateMinCompliantPercent),
		or(g.MaxFailedPercent, scheduler.DefaultGateMaxFailedPercent), or(g.MaxWaitHours, wait))
}

// rollout builds the overview's rollout section from the snapshot.
func (c *Console) rollout(ctx context.Context, snap *Snapshot) (*Rollout, error) {
	ro := &Rollout{Forecast: snap.Forecast}
	if c.cfg.Rollouts != nil {
		pauses, err := c.cfg.Rollouts.Pauses(ctx)
		if err != nil {
			return nil, err
		}
		ro.Pauses = pauses
		plans, err := c.cfg.Rollouts.RingPlans(ctx)
		if err != nil {
			return nil, err
		}
		var status map[string][]scheduler.RingStatus
		if c.cfg.Gates != nil {
			status = c.cfg.Gates.RingStatuses()
		}
		ro.Plans = BuildRingRows(plans, status)
	}
	return ro, nil
}

// ReadinessData is the readiness page: the Macs at risk or failing in the
// window, worst first, with their reasons.
type ReadinessData struct {
	Summary *ForecastSummary
	Rows    []ReadinessRow
	Total   int
	Limit   int
}

// ReadinessRow is one Mac at risk or failing.
type ReadinessRow struct {
	Mark   storage.ForecastMark
	Serial string
	Name   string
}

func (c *Console) readinessPage(w http.ResponseWriter, r *http.Request, ss *session) (string, *view, error) {
	snap, err := c.snaps.get(r.Context())
	if err != nil {
		return "", nil, err
	}
	d := &ReadinessData{Summary: snap.Forecast, Rows: snap.AtRisk, Total: snap.AtRiskTotal, Limit: readinessRows}
	if d.Summary == nil {
		d.Summary = &ForecastSummary{Days: ForecastWindowDays}
	}
	return "readiness", &view{Title: "Readiness forecast", Nav: "overview", Data: d}, nil
}
