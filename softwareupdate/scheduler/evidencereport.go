package scheduler

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/storage"
)

// DefaultEvidenceWithinDays is the patch window of the evidence summary
// when none is given ("patched within 14 days of release").
const DefaultEvidenceWithinDays = 14

// EvidenceQuery asks for the evidence of the days From to To (YYYY-MM-DD,
// both included), for one group or the whole fleet (Group ""), with the
// patch window WithinDays.
type EvidenceQuery struct {
	From, To   string
	Group      string
	WithinDays int
}

// Check validates the query at now: real days, From not after To, To not
// after today, the range within the days kept (storage.MaxEvidenceDays), a
// valid group and a window of 1 to storage.MaxEvidencePatchDays days.
func (q EvidenceQuery) Check(now time.Time) error {
	from, err := storage.ParseDay(q.From)
	if err != nil {
		return fmt.Errorf("%w: from: %v", ErrInvalid, err)
	}
	to, err := storage.ParseDay(q.To)
	if err != nil {
		return fmt.Errorf("%w: to: %v", ErrInvalid, err)
	}
	today := now.UTC().Truncate(24 * time.Hour)
	oldest := today.AddDate(0, 0, -storage.MaxEvidenceDays)
	switch {
	case from.After(to):
		return fmt.Errorf("%w: from %s is after to %s", ErrInvalid, q.From, q.To)
	case to.After(today):
		return fmt.Errorf("%w: to %s is after today (%s)", ErrInvalid, q.To, today.Format(time.DateOnly))
	case from.Before(oldest):
		return fmt.Errorf("%w: from %s is before the evidence kept: %d days, from %s on", ErrInvalid, q.From,
			storage.MaxEvidenceDays, oldest.Format(time.DateOnly))
	case q.Group != "" && !ValidGroupID(q.Group):
		return fmt.Errorf("%w: group %q", ErrInvalid, truncate(q.Group))
	case q.WithinDays < 1 || q.WithinDays > storage.MaxEvidencePatchDays:
		return fmt.Errorf("%w: the patch window must be 1 to %d days", ErrInvalid, storage.MaxEvidencePatchDays)
	}
	return nil
}

// EvidenceReport is what an auditor asks for: how many Macs were patched
// within WithinDays of each release posted in the period, the daily figures
// of the fleet and each group (or of one group), and the exceptions in force.
type EvidenceReport struct {
	From       string `json:"from"`
	To         string `json:"to"`
	Group      string `json:"group,omitempty"`
	WithinDays int    `json:"within_days"`
	// Days counts the days of the period with evidence recorded.
	Days     int              `json:"days"`
	Summary  EvidenceSummary  `json:"summary"`
	Releases []ReleaseWindow  `json:"releases"`
	Rows     []EvidenceDayRow `json:"rows"`
	// Exceptions lists every exception in force on a day of the period,
	// with the first and last such day.
	Exceptions []ExceptionSpan `json:"exceptions"`
}

// EvidenceSummary sums the releases posted in the period: Within of
// Required Macs patched less than WithinDays × 24 h after Apple's posting.
type EvidenceSummary struct {
	Required int     `json:"required"`
	Within   int     `json:"within"`
	Percent  float64 `json:"percent"`
	Text     string  `json:"text"`
}

// ReleaseWindow is how the Macs stood on one release: from the last day of
// the period on which it was the newest release of its major among the
// row's targets (Macs move on once a newer one is required: the figures
// freeze when the release is superseded), else the last day it appears.
// Required Macs working toward it or patched to it, Within of them patched
// less than WithinDays × 24 h after Posted. InPeriod: Posted is within the
// period, so the release counts in the summary.
type ReleaseWindow struct {
	Version  string    `json:"version"`
	Posted   time.Time `json:"posted,omitzero"`
	InPeriod bool      `json:"in_period"`
	Day      string    `json:"day"`
	Required int       `json:"required"`
	Patched  int       `json:"patched"`
	Within   int       `json:"within"`
	Percent  float64   `json:"percent"`
}

// releasePick is a release's figures from one day; current: no newer
// release of its major was among the row's targets that day.
type releasePick struct {
	w       ReleaseWindow
	current bool
}

// EvidenceDayRow is one day's row of the fleet (GroupID "") or a group.
type EvidenceDayRow struct {
	Day string `json:"day"`
	storage.EvidenceRow
	// CompliantPercent is Compliant of Managed; OnTimePercent OnTime of
	// DeadlinePassed (0 when there are none).
	CompliantPercent float64 `json:"compliant_percent"`
	OnTimePercent    float64 `json:"on_time_percent"`
}

// ExceptionSpan is an exception and the days of the period it was in force.
type ExceptionSpan struct {
	storage.EvidenceException
	FirstDay string `json:"first_day"`
	LastDay  string `json:"last_day"`
}

func percentOf(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return float64(int(1000*float64(n)/float64(of)+0.5)) / 10 // one decimal
}

// BuildEvidenceReport computes the report of q from the stored days (the
// days of q's period, oldest first). It is pure.
func BuildEvidenceReport(q EvidenceQuery, days []storage.EvidenceDay) *EvidenceReport {
	rep := &EvidenceReport{From: q.From, To: q.To, Group: q.Group, WithinDays: q.WithinDays,
		Releases: []ReleaseWindow{}, Rows: []EvidenceDayRow{}, Exceptions: []ExceptionSpan{}}
	from, _ := storage.ParseDay(q.From)
	to, _ := storage.ParseDay(q.To)
	best := map[string]*releasePick{}
	spans := map[string]*ExceptionSpan{}
	var spanOrder []string
	for _, d := range days {
		if d.Day < q.From || d.Day > q.To {
			continue
		}
		rep.Days++
		for _, r := range d.Rows {
			if q.Group == "" || r.GroupID == q.Group {
				rep.Rows = append(rep.Rows, EvidenceDayRow{Day: d.Day, EvidenceRow: r,
					CompliantPercent: percentOf(r.Compliant, r.Managed), OnTimePercent: percentOf(r.OnTime, r.DeadlinePassed)})
			}
			if r.GroupID != q.Group { // the summary's row: the fleet's or the group's
				continue
			}
			newest := map[int]string{} // the newest release of each major in the row
			for _, rel := range r.Releases {
				if m := majorOf(rel.Version); newest[m] == "" || compareVersions(rel.Version, newest[m]) > 0 {
					newest[m] = rel.Version
				}
			}
			for _, rel := range r.Releases {
				current := newest[majorOf(rel.Version)] == rel.Version
				w := ReleaseWindow{Version: rel.Version, Posted: rel.Posted, Day: d.Day, Required: rel.Required}
				for _, p := range rel.PatchedAfter {
					w.Patched += p[1]
					if p[0] < q.WithinDays && !rel.Posted.IsZero() {
						w.Within += p[1]
					}
				}
				if b := best[rel.Version]; b == nil || current || !b.current {
					best[rel.Version] = &releasePick{w: w, current: current}
				}
			}
		}
		for _, e := range d.Exceptions {
			if q.Group != "" && e.GroupID != q.Group {
				continue
			}
			k := e.Scope + "\x00" + e.ID + "\x00" + e.GrantedAt.String() + "\x00" + e.Expires.String()
			if s := spans[k]; s != nil {
				s.LastDay = d.Day
				continue
			}
			spans[k] = &ExceptionSpan{EvidenceException: e, FirstDay: d.Day, LastDay: d.Day}
			spanOrder = append(spanOrder, k)
		}
	}
	for _, b := range best {
		w := &b.w
		w.InPeriod = !w.Posted.IsZero() && !w.Posted.Before(from) && !w.Posted.After(to)
		w.Percent = percentOf(w.Within, w.Required)
		rep.Releases = append(rep.Releases, *w)
		if w.InPeriod {
			rep.Summary.Required += w.Required
			rep.Summary.Within += w.Within
		}
	}
	slices.SortFunc(rep.Releases, func(a, b ReleaseWindow) int { return compareVersions(b.Version, a.Version) })
	for _, k := range spanOrder {
		rep.Exceptions = append(rep.Exceptions, *spans[k])
	}
	slices.SortFunc(rep.Exceptions, func(a, b ExceptionSpan) int {
		return cmp.Or(cmp.Compare(a.FirstDay, b.FirstDay), cmp.Compare(a.Scope, b.Scope), cmp.Compare(a.ID, b.ID))
	})
	rep.Summary.Percent = percentOf(rep.Summary.Within, rep.Summary.Required)
	who := "Macs"
	if q.Group != "" {
		who = "Macs of group " + q.Group
	}
	var names []string
	for _, w := range rep.Releases {
		if w.InPeriod {
			names = append(names, w.Version)
		}
	}
	slices.Reverse(names)
	switch {
	case rep.Days == 0:
		rep.Summary.Text = fmt.Sprintf("No evidence recorded between %s and %s", q.From, q.To)
	case rep.Summary.Required == 0:
		rep.Summary.Text = fmt.Sprintf("No release posted between %s and %s was required of any of the %s", q.From, q.To, who)
	default:
		rep.Summary.Text = fmt.Sprintf("%s %% of %s patched within %d days of release between %s and %s (%d of %d; releases %s); %d exceptions in force",
			formatPercent(rep.Summary.Percent), who, q.WithinDays, q.From, q.To, rep.Summary.Within, rep.Summary.Required,
			strings.Join(names, ", "), len(rep.Exceptions))
	}
	return rep
}

func formatPercent(p float64) string {
	if p == float64(int(p)) {
		return fmt.Sprintf("%d", int(p))
	}
	return fmt.Sprintf("%.1f", p)
}

// majorOf returns the major version of v (-1 if v does not parse).
func majorOf(v string) int {
	pv, err := catalog.ParseVersion(v)
	if err != nil {
		return -1
	}
	return pv.Major()
}
