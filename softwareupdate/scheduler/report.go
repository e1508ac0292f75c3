package scheduler

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
)

// PhaseUnevaluated is how reports name the phase of a device the scheduler
// has not evaluated yet (it has no state).
const PhaseUnevaluated softwareupdate.Phase = "unevaluated"

// DeadlineDays is how many days ahead ComplianceReport.DeadlinesAhead looks.
const DeadlineDays = 30

// reportHistory bounds the history entries read per device for
// time-to-compliance.
const reportHistory = 200

// ComplianceReport is the fleet's compliance at one instant: counts per
// phase and OS version, the Macs past their deadline, failures by reason,
// deadlines per day ahead, time-to-compliance per current target, and one
// row per device.
type ComplianceReport struct {
	GeneratedAt time.Time `json:"generated_at"`
	// Devices counts the device enrollments reported (user channels are not).
	Devices int `json:"devices"`
	// Compliant counts devices in the compliant phase; Managed those whose
	// policy manages updates (every phase but unmanaged and unevaluated).
	Compliant int `json:"compliant"`
	Managed   int `json:"managed"`
	// ByPhase counts devices per phase ("unevaluated" for devices without state).
	ByPhase map[softwareupdate.Phase]int `json:"by_phase"`
	// ByStatus counts devices per state an admin sees (Status): the phase,
	// or deferring or needs-bootstrap-token. It sums to Devices.
	ByStatus map[string]int `json:"by_status"`
	// ByOSVersion counts devices per running macOS version ("unknown" if never reported).
	ByOSVersion map[string]int `json:"by_os_version"`
	// PastDeadline lists the Macs whose deadline has passed and that are not
	// compliant, earliest deadline first.
	PastDeadline []DeviceBrief `json:"past_deadline"`
	// Unsupported lists the Macs whose hardware cannot take their target.
	Unsupported []DeviceBrief `json:"unsupported"`
	// Ineligible lists the Macs Sundial may not update, with the reason
	// (not supervised); they are never counted as failed.
	Ineligible []DeviceBrief `json:"ineligible"`
	// Deferring lists the Macs past their deadline that keep answering
	// NotNow, with how often and since when.
	Deferring []DeviceBrief `json:"deferring"`
	// NeedsBootstrapToken lists the Apple silicon Macs whose update needs a
	// bootstrap token that is not escrowed.
	NeedsBootstrapToken []DeviceBrief `json:"needs_bootstrap_token"`
	// HeldRings counts, per group, the Macs a ring's health gate keeps
	// from starting their notice, with the reason; by group.
	HeldRings []RingHold `json:"held_rings"`
	// Failures counts surfaced failures by reason, most frequent first.
	Failures []FailureCount `json:"failures"`
	// DeadlinesAhead counts, for each of the next DeadlineDays UTC days
	// (today first), the non-compliant Macs whose deadline falls on it.
	DeadlinesAhead []DayCount `json:"deadlines_ahead"`
	// TimeToCompliance is measured from the history, per current target,
	// newest target first.
	TimeToCompliance []TargetCompliance `json:"time_to_compliance"`
	// Rows is one row per device, by device ID (omitted when not asked for).
	Rows []ReportRow `json:"rows,omitempty"`
}

// DeviceBrief names a device in a report list.
type DeviceBrief struct {
	DeviceID     string               `json:"device_id"`
	SerialNumber string               `json:"serial_number,omitempty"`
	GroupID      string               `json:"group_id"`
	OSVersion    string               `json:"os_version,omitempty"`
	Target       string               `json:"target,omitempty"`
	Phase        softwareupdate.Phase `json:"phase"`
	Status       string               `json:"status"`
	Reason       string               `json:"reason,omitempty"`
	Deadline     time.Time            `json:"deadline,omitzero"`
	NotNowCount  int                  `json:"not_now_count,omitempty"`
	NotNowSince  time.Time            `json:"not_now_since,omitzero"`
}

// FailureCount is how many Macs share one failure reason.
type FailureCount struct {
	Reason  string   `json:"reason"`
	Count   int      `json:"count"`
	Devices []string `json:"devices"`
}

// RingHold is how many Macs of a group a ring gate holds, and why.
type RingHold struct {
	GroupID string `json:"group_id"`
	Reason  string `json:"reason"`
	Macs    int    `json:"macs"`
}

// DayCount is the number of deadlines on one UTC day ("YYYY-MM-DD").
type DayCount struct {
	Date  string `json:"date"`
	Count int    `json:"count"`
}

// TargetCompliance is the time Macs took to reach one target: from the
// first non-compliant phase of an episode (pending, notify, countdown,
// enforce, failed) to the compliant phase that ended it.
type TargetCompliance struct {
	Target string `json:"target"`
	// Reached counts episodes that ended compliant; Outstanding the Macs
	// still working toward the target.
	Reached     int `json:"reached"`
	Outstanding int `json:"outstanding"`
	// Median and P90 (nearest rank) in seconds; zero when Reached is 0.
	MedianSeconds int64 `json:"median_seconds"`
	P90Seconds    int64 `json:"p90_seconds"`
}

// Median returns the median time-to-compliance.
func (t TargetCompliance) Median() time.Duration { return time.Duration(t.MedianSeconds) * time.Second }

// P90 returns the 90th-percentile time-to-compliance.
func (t TargetCompliance) P90() time.Duration { return time.Duration(t.P90Seconds) * time.Second }

// ReportRow is one device in a compliance report.
type ReportRow struct {
	DeviceID     string                         `json:"device_id"`
	SerialNumber string                         `json:"serial_number,omitempty"`
	DeviceName   string                         `json:"device_name,omitempty"`
	Model        string                         `json:"model,omitempty"`
	BoardID      string                         `json:"board_id,omitempty"`
	GroupID      string                         `json:"group_id"`
	OSVersion    string                         `json:"os_version,omitempty"`
	Build        string                         `json:"build,omitempty"`
	Phase        softwareupdate.Phase           `json:"phase"`
	Reason       string                         `json:"reason,omitempty"`
	Target       string                         `json:"target,omitempty"`
	MajorUpgrade bool                           `json:"major_upgrade,omitempty"`
	Deadline     time.Time                      `json:"deadline,omitzero"`
	PastDeadline bool                           `json:"past_deadline,omitempty"`
	Path         softwareupdate.EnforcementPath `json:"path,omitempty"`
	Step         string                         `json:"step,omitempty"`
	Failure      string                         `json:"failure,omitempty"`
	PhaseSince   time.Time                      `json:"phase_since,omitzero"`
	LastSeen     time.Time                      `json:"last_seen,omitzero"`
	Enabled      bool                           `json:"enabled"`
	// BootstrapMissing: an Apple silicon Mac without an escrowed bootstrap
	// token, which MDM cannot make install an update.
	BootstrapMissing bool `json:"bootstrap_missing,omitempty"`
	// Status is the state an admin sees (Status); NotNowCount and
	// NotNowSince say how a deferring Mac defers.
	Status              string    `json:"status"`
	NotNowCount         int       `json:"not_now_count,omitempty"`
	NotNowSince         time.Time `json:"not_now_since,omitzero"`
	NeedsBootstrapToken bool      `json:"needs_bootstrap_token,omitempty"`
}

// CSVHeader is the header of ReportRow.CSV.
var CSVHeader = []string{"device_id", "serial_number", "device_name", "model", "board_id", "group_id",
	"os_version", "build", "phase", "reason", "target", "major_upgrade", "deadline", "past_deadline",
	"path", "step", "failure", "phase_since", "last_seen", "enabled",
	"status", "not_now_count", "not_now_since", "needs_bootstrap_token"}

// CSV returns the row's fields in CSVHeader order (times in RFC 3339 UTC,
// empty when unset).
func (r *ReportRow) CSV() []string {
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	b := func(v bool) string {
		if v {
			return "true"
		}
		return "false"
	}
	return []string{r.DeviceID, r.SerialNumber, r.DeviceName, r.Model, r.BoardID, r.GroupID,
		r.OSVersion, r.Build, string(r.Phase), r.Reason, r.Target, b(r.MajorUpgrade), ts(r.Deadline), b(r.PastDeadline),
		string(r.Path), r.Step, r.Failure, ts(r.PhaseSince), ts(r.LastSeen), b(r.Enabled),
		r.Status, strconv.Itoa(r.NotNowCount), ts(r.NotNowSince), b(r.NeedsBootstrapToken)}
}

// ReportInput is what the report knows of one device.
type ReportInput struct {
	Device  *mdm.Device
	GroupID string
	// State is nil for a device never evaluated.
	State *State
	// History is the device's history, oldest first (may be empty).
	History []Transition
}

// settled phases need no further action.
func settled(p softwareupdate.Phase) bool {
	switch p {
	case softwareupdate.PhaseCompliant, softwareupdate.PhaseUnsupported, softwareupdate.PhaseUnmanaged,
		softwareupdate.PhaseUnknown, softwareupdate.PhaseExempt, softwareupdate.PhaseIneligible, PhaseUnevaluated, "":
		return true
	}
	return false
}

// nonCompliant phases are those of a Mac working toward a target.
func nonCompliant(p softwareupdate.Phase) bool {
	switch p {
	case softwareupdate.PhasePending, softwareupdate.PhaseNotify, softwareupdate.PhaseCountdown,
		softwareupdate.PhaseEnforce, softwareupdate.PhaseFailed, softwareupdate.PhasePaused:
		return true
	}
	return false
}

// BuildComplianceReport computes the report at now from the inputs. It is
// pure: the same inputs give the same report. withRows adds per-device rows.
func BuildComplianceReport(now time.Time, in []ReportInput, withRows bool) *ComplianceReport {
	now = now.UTC()
	r := &ComplianceReport{
		GeneratedAt:         now,
		ByPhase:             map[softwareupdate.Phase]int{},
		ByStatus:            map[string]int{},
		ByOSVersion:         map[string]int{},
		PastDeadline:        []DeviceBrief{},
		Unsupported:         []DeviceBrief{},
		Ineligible:          []DeviceBrief{},
		Deferring:           []DeviceBrief{},
		NeedsBootstrapToken: []DeviceBrief{},
		HeldRings:           []RingHold{},
		Failures:            []FailureCount{},
		TimeToCompliance:    []TargetCompliance{},
	}
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	ahead := make([]int, DeadlineDays)
	failures := map[string]*FailureCount{}
	holds := map[string]*RingHold{}
	durations := map[string][]time.Duration{}
	outstanding := map[string]int{}
	current := map[string]bool{}

	for _, x := range in {
		row := rowOf(now, &x)
		r.Devices++
		r.ByPhase[row.Phase]++
		r.ByStatus[row.Status]++
		osv := row.OSVersion
		if osv == "" {
			osv = "unknown"
		}
		r.ByOSVersion[osv]++
		if row.Phase == softwareupdate.PhaseCompliant {
			r.Compliant++
		}
		if row.Phase != softwareupdate.PhaseUnmanaged && row.Phase != PhaseUnevaluated {
			r.Managed++
		}
		brief := DeviceBrief{DeviceID: row.DeviceID, SerialNumber: row.SerialNumber, GroupID: row.GroupID, OSVersion: row.OSVersion,
			Target: row.Target, Phase: row.Phase, Status: row.Status, Reason: row.Reason, Deadline: row.Deadline,
			NotNowCount: row.NotNowCount, NotNowSince: row.NotNowSince}
		if row.PastDeadline {
			r.PastDeadline = append(r.PastDeadline, brief)
		}
		if row.Phase == softwareupdate.PhaseUnsupported {
			r.Unsupported = append(r.Unsupported, brief)
		}
		if row.Phase == softwareupdate.PhaseIneligible {
			r.Ineligible = append(r.Ineligible, brief)
		}
		if row.Status == StatusDeferring {
			r.Deferring = append(r.Deferring, brief)
		}
		if row.NeedsBootstrapToken {
			r.NeedsBootstrapToken = append(r.NeedsBootstrapToken, brief)
		}
		if x.State != nil && HeldByRing(x.State) {
			h := holds[row.GroupID]
			if h == nil {
				h = &RingHold{GroupID: row.GroupID, Reason: row.Reason}
				holds[row.GroupID] = h
			}
			h.Macs++
		}
		if reason := failureOf(&row); reason != "" {
			f := failures[reason]
			if f == nil {
				f = &FailureCount{Reason: reason}
				failures[reason] = f
			}
			f.Count++
			f.Devices = append(f.Devices, row.DeviceID)
		}
		if !settled(row.Phase) && !row.Deadline.IsZero() && row.Deadline.After(now) {
			if d := int(row.Deadline.Sub(today) / (24 * time.Hour)); d < DeadlineDays {
				ahead[d]++
			}
		}
		// Time to compliance.
		last := ""
		for _, ep := range episodes(x.History) {
			durations[ep.target] = append(durations[ep.target], ep.took)
			last = ep.target
		}
		switch {
		case nonCompliant(row.Phase) && row.Target != "":
			current[row.Target] = true
			outstanding[row.Target]++
		case row.Phase == softwareupdate.PhaseCompliant && last != "":
			current[last] = true
		}
		if withRows {
			r.Rows = append(r.Rows, row)
		}
	}
	for i, n := range ahead {
		r.DeadlinesAhead = append(r.DeadlinesAhead, DayCount{Date: today.AddDate(0, 0, i).Format(time.DateOnly), Count: n})
	}
	for _, f := range failures {
		r.Failures = append(r.Failures, *f)
	}
	for _, h := range holds {
		r.HeldRings = append(r.HeldRings, *h)
	}
	slices.SortFunc(r.HeldRings, func(a, b RingHold) int { return cmp.Compare(a.GroupID, b.GroupID) })
	slices.SortFunc(r.Failures, func(a, b FailureCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Reason, b.Reason))
	})
	slices.SortFunc(r.PastDeadline, func(a, b DeviceBrief) int {
		return cmp.Or(a.Deadline.Compare(b.Deadline), cmp.Compare(a.DeviceID, b.DeviceID))
	})
	for _, t := range slices.Collect(maps.Keys(current)) {
		ds := durations[t]
		slices.Sort(ds)
		tc := TargetCompliance{Target: t, Reached: len(ds), Outstanding: outstanding[t]}
		if len(ds) > 0 {
			tc.MedianSeconds = int64(percentile(ds, 0.5) / time.Second)
			tc.P90Seconds = int64(percentile(ds, 0.9) / time.Second)
		}
		r.TimeToCompliance = append(r.TimeToCompliance, tc)
	}
	slices.SortFunc(r.TimeToCompliance, func(a, b TargetCompliance) int { return compareVersions(b.Target, a.Target) })
	if withRows {
		slices.SortFunc(r.Rows, func(a, b ReportRow) int { return cmp.Compare(a.DeviceID, b.DeviceID) })
	}
	return r
}

// compareVersions orders version strings numerically; unparsable ones sort
// as strings after parsable ones.
func compareVersions(a, b string) int {
	va, ea := catalog.ParseVersion(a)
	vb, eb := catalog.ParseVersion(b)
	switch {
	case ea == nil && eb == nil:
		return va.Compare(vb)
	case ea == nil:
		return 1
	case eb == nil:
		return -1
	}
	return cmp.Compare(a, b)
}

// percentile returns the nearest-rank p-quantile of sorted ds (non-empty).
func percentile(ds []time.Duration, p float64) time.Duration {
	rank := int(p*float64(len(ds))+0.999999999) - 1
	return ds[max(0, min(rank, len(ds)-1))]
}

func rowOf(now time.Time, x *ReportInput) ReportRow {
	d := x.Device
	row := ReportRow{DeviceID: d.ID, GroupID: x.GroupID, Phase: PhaseUnevaluated, Enabled: d.Enabled, LastSeen: d.LastSeen,
		SerialNumber: cmp.Or(d.Inventory.SerialNumber, d.SerialNumber), DeviceName: d.Inventory.DeviceName}
	f := FactsOf(d)
	if st := x.State; st != nil {
		if st.Facts.OSVersion != "" {
			f = st.Facts
		}
		row.Phase, row.Reason, row.Target, row.MajorUpgrade = st.Phase, st.Reason, st.Target, st.MajorUpgrade
		row.Deadline, row.Path, row.Step, row.Failure, row.PhaseSince = st.Deadline, st.Path, st.Step, st.Failure, st.PhaseSince
		if row.Phase == "" {
			row.Phase = PhaseUnevaluated
		}
		row.PastDeadline = !settled(row.Phase) && !row.Deadline.IsZero() && !now.Before(row.Deadline)
		row.Status, row.NeedsBootstrapToken = Status(st), NeedsBootstrapToken(st)
		if Deferring(st) {
			row.NotNowCount, row.NotNowSince = st.NotNowCount, st.NotNowSince
		}
	}
	if row.Status == "" {
		row.Status = string(row.Phase)
	}
	row.OSVersion, row.Build, row.Model, row.BoardID = f.OSVersion, f.Build, f.Model, f.BoardID
	row.BootstrapMissing = f.AppleSilicon && !f.Bootstrap
	return row
}

// failureOf returns the failure a row surfaces: the enforcer's failure, or
// the reason of a failed phase (a policy that cannot be evaluated).
func failureOf(r *ReportRow) string {
	if r.Failure != "" {
		return r.Failure
	}
	if r.Phase == softwareupdate.PhaseFailed {
		return r.Reason
	}
	return ""
}

type episode struct {
	target string
	took   time.Duration
}

// episodes walks a history and returns each non-compliant episode that
// ended compliant: from its first non-compliant phase to the compliant one.
// The target is the last one named while non-compliant.
func episodes(h []Transition) []episode {
	var out []episode
	var start time.Time
	target := ""
	for _, t := range h {
		if t.Kind != EventPhase {
			continue
		}
		switch {
		case nonCompliant(t.To):
			if start.IsZero() {
				start = t.At
			}
			if t.Target != "" {
				target = t.Target
			}
		case t.To == softwareupdate.PhaseCompliant:
			if !start.IsZero() && target != "" && !t.At.Before(start) {
				out = append(out, episode{target: target, took: t.At.Sub(start)})
			}
			start, target = time.Time{}, ""
		default: // unmanaged, unsupported, exempt, unknown: the episode ends unfinished
			start, target = time.Time{}, ""
		}
	}
	return out
}

// Reporter builds reports and what-ifs from the stores. It only reads.
type Reporter struct {
	store   Store
	devices DeviceReader
	cat     *catalog.Catalog
	clock   Clock
}

// NewReporter returns a Reporter; every argument is required.
func NewReporter(store Store, devices DeviceReader, cat *catalog.Catalog, clk Clock) *Reporter {
	if store == nil || devices == nil || cat == nil || clk == nil {
		panic("scheduler.NewReporter: nil store, device reader, catalog or clock")
	}
	return &Reporter{store: store, devices: devices, cat: cat, clock: clk}
}

// reportPage is how many devices a report reads at once.
const reportPage = 500

// Compliance builds the compliance report at the clock's now from every
// device enrollment, its state, group and history. withRows adds the
// per-device rows.
func (r *Reporter) Compliance(ctx context.Context, withRows bool) (*ComplianceReport, error) {
	now := r.clock.Now()
	var in []ReportInput
	err := r.eachPage(ctx, func(devs []*mdm.Device, ids []string) error {
		states, err := r.store.States(ctx, ids)
		if err != nil {
			return fmt.Errorf("load update states: %w", err)
		}
		groups, err := r.store.GroupsOf(ctx, ids)
		if err != nil {
			return fmt.Errorf("load group membership: %w", err)
		}
		for i, d := range devs {
			x := ReportInput{Device: d, GroupID: groups[i], State: states[i]}
			if states[i] != nil {
				if x.History, err = r.store.History(ctx, d.ID, reportHistory); err != nil {
					return fmt.Errorf("load history of %s: %w", d.ID, err)
				}
			}
			in = append(in, x)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return BuildComplianceReport(now, in, withRows), nil
}

// eachPage calls fn with every page of manageable device enrollments.
func (r *Reporter) eachPage(ctx context.Context, fn func(devs []*mdm.Device, ids []string) error) error {
	for after := ""; ; {
		page, err := r.devices.Devices(ctx, after, reportPage)
		if err != nil {
			return fmt.Errorf("list devices: %w", err)
		}
		if len(page) == 0 {
			return nil
		}
		after = page[len(page)-1].ID
		devs := page[:0:0]
		ids := make([]string, 0, len(page))
		for _, d := range page {
			if manageable(d) {
				devs = append(devs, d)
				ids = append(ids, d.ID)
			}
		}
		if len(ids) > 0 {
			if err := fn(devs, ids); err != nil {
				return err
			}
		}
		if len(page) < reportPage {
			return nil
		}
	}
}
