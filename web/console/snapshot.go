package console

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// DefaultSnapshotAge is how old the fleet snapshot behind the overview and
// the device list may get before a view starts a refresh. Building it reads
// every device (about 2 s of CPU at 100,000 Macs, docs/benchmarks.md), so
// views share one instead of each reading the fleet.
const DefaultSnapshotAge = 30 * time.Second

// Snapshot is the fleet at one instant: the compliance report with its
// per-device rows (scheduler.Reporter.Compliance, as GET
// /api/v1/reports/compliance answers), the groups and their policies.
type Snapshot struct {
	Report   *scheduler.ComplianceReport
	Groups   []scheduler.Group
	Policies map[string]softwareupdate.Policy
	// Days is the compliance per group of the last ChartDays days (this
	// one included), when the console keeps them.
	Days []storage.ComplianceDay
	// Forecast summarises the leader's last readiness check over this
	// snapshot; AtRisk lists its Macs at risk or failing, worst first (the
	// first readinessRows of AtRiskTotal). Nil without a forecast source.
	Forecast    *ForecastSummary
	AtRisk      []ReadinessRow
	AtRiskTotal int

	mu    sync.Mutex
	order map[string][]int32 // row indices sorted by a key, built on first use
	// search is each row's serial number, name and ID in lower case,
	// built on the first search.
	search []string
}

// searchKeys returns the rows' lower-case search text.
func (s *Snapshot) searchKeys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.search == nil {
		s.search = make([]string, len(s.Report.Rows))
		for i := range s.Report.Rows {
			r := &s.Report.Rows[i]
			s.search[i] = strings.ToLower(r.SerialNumber + "\x00" + r.DeviceName + "\x00" + r.DeviceID)
		}
	}
	return s.search
}

// snapshots keeps the latest Snapshot and refreshes it in the background
// once it is older than maxAge (or invalidated by a change made through the
// console); a view never waits for a refresh except for the very first.
type snapshots struct {
	build  func(ctx context.Context) (*Snapshot, error)
	clock  Clock
	maxAge time.Duration
	onErr  func(error)

	buildMu sync.Mutex // one build at a time
	mu      sync.Mutex
	cur     *Snapshot
	dirty   bool
	running bool
}

func (s *snapshots) get(ctx context.Context) (*Snapshot, error) {
	s.mu.Lock()
	cur := s.cur
	stale := cur != nil && (s.dirty || s.clock.Now().Sub(cur.Report.GeneratedAt) >= s.maxAge)
	if stale && !s.running {
		s.running = true
		go s.refresh()
	}
	s.mu.Unlock()
	if cur != nil {
		return cur, nil
	}
	s.buildMu.Lock()
	defer s.buildMu.Unlock()
	s.mu.Lock()
	cur = s.cur
	s.mu.Unlock()
	if cur != nil { // built while this view waited
		return cur, nil
	}
	snap, err := s.build(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.cur, s.dirty = snap, false
	s.mu.Unlock()
	return snap, nil
}

func (s *snapshots) refresh() {
	defer func() {
		s.mu.Lock()
		s.running = false
		s.mu.Unlock()
	}()
	s.buildMu.Lock()
	defer s.buildMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s.mu.Lock()
	s.dirty = false
	s.mu.Unlock()
	snap, err := s.build(ctx)
	if err != nil {
		s.onErr(err)
		return
	}
	s.mu.Lock()
	s.cur = snap
	s.mu.Unlock()
}

// invalidate makes the next view start a refresh (after a change).
func (s *snapshots) invalidate() {
	s.mu.Lock()
	s.dirty = true
	s.mu.Unlock()
}

// Sort keys of the device list.
var sortKeys = map[string]func(a, b *scheduler.ReportRow) int{
	"id":        func(a, b *scheduler.ReportRow) int { return 0 },
	"serial":    func(a, b *scheduler.ReportRow) int { return cmp.Compare(a.SerialNumber, b.SerialNumber) },
	"name":      func(a, b *scheduler.ReportRow) int { return cmp.Compare(a.DeviceName, b.DeviceName) },
	"group":     func(a, b *scheduler.ReportRow) int { return cmp.Compare(a.GroupID, b.GroupID) },
	"os":        func(a, b *scheduler.ReportRow) int { return compareOS(a.OSVersion, b.OSVersion) },
	"phase":     func(a, b *scheduler.ReportRow) int { return cmp.Compare(phaseRank[a.Phase], phaseRank[b.Phase]) },
	"deadline":  func(a, b *scheduler.ReportRow) int { return compareTime(a.Deadline, b.Deadline) },
	"last_seen": func(a, b *scheduler.ReportRow) int { return compareTime(a.LastSeen, b.LastSeen) },
}

// phaseRank orders phases as the funnel does.
var phaseRank = func() map[softwareupdate.Phase]int {
	m := map[softwareupdate.Phase]int{}
	for i, f := range funnel {
		m[f.phase] = i
	}
	return m
}()

// compareTime puts unset times last.
func compareTime(a, b time.Time) int {
	switch {
	case a.IsZero() && b.IsZero():
		return 0
	case a.IsZero():
		return 1
	case b.IsZero():
		return -1
	}
	return a.Compare(b)
}

// compareOS orders dotted versions numerically.
func compareOS(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(as), len(bs)) {
		var x, y string
		if i < len(as) {
			x = as[i]
		}
		if i < len(bs) {
			y = bs[i]
		}
		if c := cmp.Or(cmp.Compare(len(x), len(y)), cmp.Compare(x, y)); c != 0 {
			return c
		}
	}
	return 0
}

// sorted returns the row indices ordered by key (ties by device ID, the
// rows' own order), computed once per snapshot and key.
func (s *Snapshot) sorted(key string) []int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if idx, ok := s.order[key]; ok {
		return idx
	}
	rows := s.Report.Rows
	idx := make([]int32, len(rows))
	for i := range idx {
		idx[i] = int32(i)
	}
	if key != "id" {
		less := sortKeys[key]
		slices.SortStableFunc(idx, func(a, b int32) int { return less(&rows[a], &rows[b]) })
	}
	if s.order == nil {
		s.order = map[string][]int32{}
	}
	s.order[key] = idx
	return idx
}

// Run rebuilds the fleet snapshot every interval until ctx ends, so that
// each day's compliance is recorded for the chart even when nobody looks.
func (c *Console) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.snaps.refresh()
		}
	}
}

// Compliance returns the report of the current fleet snapshot, rows
// included (at most the snapshot age old; see snapshots.get), so that
// other readers of the whole fleet, such as the metrics, share its cost.
func (c *Console) Compliance(ctx context.Context, _ bool) (*scheduler.ComplianceReport, error) {
	snap, err := c.snaps.get(ctx)
	if err != nil {
		return nil, err
	}
	return snap.Report, nil
}
