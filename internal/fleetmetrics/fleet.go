package fleetmetrics

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// Reports builds the compliance report (scheduler.Reporter).
type Reports interface {
	Compliance(ctx context.Context, withRows bool) (*scheduler.ComplianceReport, error)
}

// Policies lists groups and their policies (scheduler.Manager).
type Policies interface {
	Groups(ctx context.Context) ([]scheduler.Group, error)
	Policy(ctx context.Context, group string) (*scheduler.PolicyRecord, error)
}

// Catalog lists releases.
type Catalog interface {
	Releases() []catalog.Release
}

// Clock tells the time.
type Clock interface{ Now() time.Time }

// MaxGroups bounds the group label: groups past it are summed as "other".
const MaxGroups = 200

// DefaultMaxAge is how old the fleet figures may be when scraped. A report
// reads every device, so scrapes share one per interval.
const DefaultMaxAge = time.Minute

// Fleet is a Prometheus collector of the fleet's state, computed from the
// same compliance report as GET /api/v1/reports/compliance.
type Fleet struct {
	reports  Reports
	policies Policies
	cat      Catalog
	clock    Clock
	log      *slog.Logger
	maxAge   time.Duration

	mu      sync.Mutex
	at      time.Time
	metrics []prometheus.Metric

	phase, ratio, macs, catalogAge, enrolled, pastDeadline, generated *prometheus.Desc
}

// NewFleet returns the collector; register it with a registry.
func NewFleet(reports Reports, policies Policies, cat Catalog, clk Clock, log *slog.Logger, maxAge time.Duration) *Fleet {
	if reports == nil || policies == nil || cat == nil || clk == nil {
		panic("fleetmetrics.NewFleet: nil dependency")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if maxAge <= 0 {
		maxAge = DefaultMaxAge
	}
	return &Fleet{reports: reports, policies: policies, cat: cat, clock: clk, log: log, maxAge: maxAge,
		phase: prometheus.NewDesc("sundial_fleet_macs", "Macs per update phase and group.", []string{"phase", "group"}, nil),
		ratio: prometheus.NewDesc("sundial_fleet_compliance_ratio",
			"Compliant Macs over managed Macs, per group policy (mode and ring offset as labels); 1 when none is managed.", []string{"group", "mode", "ring_offset_days"}, nil),
		macs:         prometheus.NewDesc("sundial_fleet_macs_total", "Macs reported (device enrollments).", nil, nil),
		pastDeadline: prometheus.NewDesc("sundial_fleet_past_deadline_macs", "Macs past their deadline and not compliant.", nil, nil),
		enrolled:     prometheus.NewDesc("sundial_fleet_enrolled_macs", "Macs whose enrollment is active (between TokenUpdate and CheckOut).", nil, nil),
		catalogAge: prometheus.NewDesc("sundial_catalog_newest_release_age_seconds",
			"Seconds since Apple posted the newest release in the catalog (a stale catalog shows as a growing value).", nil, nil),
		generated: prometheus.NewDesc("sundial_fleet_report_timestamp_seconds", "When the fleet figures were computed (Unix time).", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (f *Fleet) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{f.phase, f.ratio, f.macs, f.pastDeadline, f.enrolled, f.catalogAge, f.generated} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: it recomputes the figures when
// they are older than maxAge, else sends the cached ones.
func (f *Fleet) Collect(ch chan<- prometheus.Metric) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.clock.Now()
	if f.metrics == nil || now.Sub(f.at) >= f.maxAge {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		ms, err := f.compute(ctx, now)
		cancel()
		if err != nil {
			f.log.Error("fleet metrics: build report", "err", err)
		} else {
			f.metrics, f.at = ms, now
		}
	}
	for _, m := range f.metrics {
		ch <- m
	}
}

type phaseGroup struct {
	phase softwareupdate.Phase
	group string
}

func (f *Fleet) compute(ctx context.Context, now time.Time) ([]prometheus.Metric, error) {
	rep, err := f.reports.Compliance(ctx, true)
	if err != nil {
		return nil, err
	}
	groups, err := f.policies.Groups(ctx)
	if err != nil {
		return nil, err
	}
	known := map[string]bool{}
	for i, g := range groups {
		if i < MaxGroups {
			known[g.ID] = true
		}
	}
	groupLabel := func(g string) string {
		if known[g] {
			return g
		}
		return Other
	}
	counts := map[phaseGroup]int{}
	type tally struct{ managed, compliant int }
	tallies := map[string]*tally{}
	enrolled := 0
	for i := range rep.Rows {
		row := &rep.Rows[i]
		g := groupLabel(row.GroupID)
		counts[phaseGroup{row.Phase, g}]++
		t := tallies[g]
		if t == nil {
			t = &tally{}
			tallies[g] = t
		}
		if row.Phase != softwareupdate.PhaseUnmanaged && row.Phase != scheduler.PhaseUnevaluated {
			t.managed++
		}
		if row.Phase == softwareupdate.PhaseCompliant {
			t.compliant++
		}
		if row.Enabled {
			enrolled++
		}
	}
	var out []prometheus.Metric
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		out = append(out, prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...))
	}
	for k, n := range counts {
		gauge(f.phase, float64(n), string(k.phase), k.group)
	}
	for _, g := range groups {
		if !known[g.ID] {
			continue
		}
		p, err := f.policies.Policy(ctx, g.ID)
		if err != nil {
			continue // no policy: nothing to be compliant with
		}
		t := tallies[g.ID]
		ratio := 1.0
		if t != nil && t.managed > 0 {
			ratio = float64(t.compliant) / float64(t.managed)
		}
		gauge(f.ratio, ratio, g.ID, string(p.Policy.Mode), strconv.Itoa(p.Policy.RingOffsetDays))
	}
	gauge(f.macs, float64(rep.Devices))
	gauge(f.pastDeadline, float64(len(rep.PastDeadline)))
	gauge(f.enrolled, float64(enrolled))
	var newest time.Time
	for _, r := range f.cat.Releases() {
		if !r.Supplemental && r.PostingDate.After(newest) {
			newest = r.PostingDate
		}
	}
	if !newest.IsZero() {
		gauge(f.catalogAge, now.Sub(newest).Seconds())
	}
	gauge(f.generated, float64(rep.GeneratedAt.Unix()))
	return out, nil
}
