package storage

import (
	"context"
	"fmt"
	"time"
)

// EvidenceDay is the compliance evidence of one UTC day, as the scheduler
// leader last recorded it that day: one row for the whole fleet, one per
// group (a ring of a ring plan is a group: its row names the plan and its
// position), and the exceptions in force.
type EvidenceDay struct {
	Day     string        `json:"day"` // YYYY-MM-DD (UTC)
	TakenAt time.Time     `json:"taken_at"`
	Rows    []EvidenceRow `json:"rows"`
	// Exceptions are the exceptions in force when the day was taken (at
	// most MaxEvidenceExceptions); ExceptionsTotal counts them all.
	Exceptions      []EvidenceException `json:"exceptions"`
	ExceptionsTotal int                 `json:"exceptions_total"`
}

// EvidenceRow is the compliance of the fleet (GroupID "") or of one group.
type EvidenceRow struct {
	GroupID string `json:"group_id"`
	// Plan and Ring (1 = first) place the group in a ring plan; empty and 0
	// for a group outside every plan.
	Plan string `json:"plan,omitempty"`
	Ring int    `json:"ring,omitempty"`
	// Managed counts the Macs a policy manages (every evaluated Mac but
	// the unmanaged); Compliant those on their target or later.
	Managed   int `json:"managed"`
	Compliant int `json:"compliant"`
	// DeadlinePassed counts the Macs whose deadline for their target has
	// passed (reached or not); OnTime those of them that reached the
	// target by it.
	DeadlinePassed int `json:"deadline_passed"`
	OnTime         int `json:"on_time"`
	// Patched counts the compliant Macs whose patch was recorded; the
	// times to patch are over them, in seconds (nearest-rank median and
	// 90th percentile), from Apple's posting of the target and from the
	// Mac's first notice (0 for a Mac patched before its notice).
	Patched           int   `json:"patched"`
	FromReleaseMedian int64 `json:"from_release_median_seconds"`
	FromReleaseP90    int64 `json:"from_release_p90_seconds"`
	FromNoticeMedian  int64 `json:"from_notice_median_seconds"`
	FromNoticeP90     int64 `json:"from_notice_p90_seconds"`
	// Exceptions counts the Macs under an exception in force.
	Exceptions int `json:"exceptions"`
	// Releases are the target releases of the row's Macs.
	Releases []EvidenceRelease `json:"releases,omitempty"`
}

// EvidenceRelease is how the Macs of a row stand on one target release.
type EvidenceRelease struct {
	Version string    `json:"version"`
	Posted  time.Time `json:"posted,omitzero"` // Apple's posting date (zero: unknown)
	// Required counts the Macs working toward this release or patched to it.
	Required int `json:"required"`
	// PatchedAfter counts the patched Macs by whole days from Posted to
	// their patch: [days, Macs] pairs by days (days clamp to 0 and
	// MaxEvidencePatchDays).
	PatchedAfter [][2]int `json:"patched_after,omitempty"`
}

// EvidenceException is an exception in force on an evidence day.
type EvidenceException struct {
	Scope            string    `json:"scope"` // device or group
	ID               string    `json:"id"`
	GroupID          string    `json:"group_id,omitempty"` // the device's group (device scope)
	Exempt           bool      `json:"exempt,omitempty"`
	DeadlineOverride time.Time `json:"deadline_override,omitzero"`
	Expires          time.Time `json:"expires"`
	Reason           string    `json:"reason"`
	GrantedBy        string    `json:"granted_by"`
	GrantedAt        time.Time `json:"granted_at,omitzero"`
}

// Bounds of the evidence.
const (
	// MaxEvidenceDays is how many days are kept: a day older than this many
	// days before the newest one written is dropped.
	MaxEvidenceDays = 400
	// MaxEvidenceRows bounds the rows of a day: the fleet and the groups.
	MaxEvidenceRows = 1 + MaxComplianceGroups
	// MaxEvidenceReleases bounds the releases of a row.
	MaxEvidenceReleases = 32
	// MaxEvidencePatchDays is the last day bucket of PatchedAfter.
	MaxEvidencePatchDays = 366
	// MaxEvidenceExceptions bounds the exceptions listed per day.
	MaxEvidenceExceptions = 1000
	// maxEvidenceText bounds the IDs and texts of a day.
	maxEvidenceText = 1024
)

// EvidenceStore keeps the daily compliance evidence.
type EvidenceStore interface {
	// PutEvidenceDay replaces the evidence of d.Day with d and drops the
	// days more than MaxEvidenceDays before it. Bad input (CheckEvidenceDay)
	// gives an error and changes nothing.
	PutEvidenceDay(ctx context.Context, d EvidenceDay) error
	// EvidenceDays returns the days from from to to (YYYY-MM-DD, both
	// included), oldest first.
	EvidenceDays(ctx context.Context, from, to string) ([]EvidenceDay, error)
}

// ParseDay parses a YYYY-MM-DD day, refusing anything else.
func ParseDay(day string) (time.Time, error) {
	d, err := time.Parse(time.DateOnly, day)
	if err != nil || d.Format(time.DateOnly) != day {
		return time.Time{}, fmt.Errorf("day %q: want YYYY-MM-DD", truncate(day))
	}
	return d, nil
}

// CheckEvidenceDay validates PutEvidenceDay's input and returns the first
// day to keep.
func CheckEvidenceDay(d *EvidenceDay) (keepFrom string, err error) {
	day, err := ParseDay(d.Day)
	if err != nil {
		return "", fmt.Errorf("evidence: %w", err)
	}
	bad := func(format string, a ...any) (string, error) {
		return "", fmt.Errorf("evidence of %s: "+format, append([]any{d.Day}, a...)...)
	}
	if d.TakenAt.IsZero() || d.TakenAt.UTC().Format(time.DateOnly) != d.Day {
		return bad("taken at %s, not on that UTC day", d.TakenAt.UTC().Format(time.RFC3339))
	}
	if len(d.Rows) > MaxEvidenceRows {
		return bad("%d rows, at most %d", len(d.Rows), MaxEvidenceRows)
	}
	if len(d.Exceptions) > MaxEvidenceExceptions || d.ExceptionsTotal < len(d.Exceptions) {
		return bad("%d exceptions listed of %d, at most %d", len(d.Exceptions), d.ExceptionsTotal, MaxEvidenceExceptions)
	}
	seen := map[string]bool{}
	for i := range d.Rows {
		r := &d.Rows[i]
		switch {
		case len(r.GroupID) > 64 || len(r.Plan) > 64:
			return bad("a group or plan longer than 64 bytes")
		case seen[r.GroupID]:
			return bad("group %q twice", r.GroupID)
		case r.Managed < 0 || r.Compliant < 0 || r.Compliant > r.Managed:
			return bad("group %q: counts must satisfy 0 <= compliant <= managed", r.GroupID)
		case r.DeadlinePassed < 0 || r.OnTime < 0 || r.OnTime > r.DeadlinePassed || r.Patched < 0 || r.Exceptions < 0:
			return bad("group %q: negative counts, or more on time than past their deadline", r.GroupID)
		case r.FromReleaseMedian < 0 || r.FromReleaseP90 < 0 || r.FromNoticeMedian < 0 || r.FromNoticeP90 < 0:
			return bad("group %q: negative times to patch", r.GroupID)
		case r.Ring < 0 || r.Ring > 64:
			return bad("group %q: ring %d", r.GroupID, r.Ring)
		case len(r.Releases) > MaxEvidenceReleases:
			return bad("group %q: %d releases, at most %d", r.GroupID, len(r.Releases), MaxEvidenceReleases)
		}
		seen[r.GroupID] = true
		for _, rel := range r.Releases {
			if rel.Version == "" || len(rel.Version) > 64 || rel.Required < 0 || len(rel.PatchedAfter) > MaxEvidencePatchDays+1 {
				return bad("group %q: a malformed release", r.GroupID)
			}
			n, last := 0, -1
			for _, p := range rel.PatchedAfter {
				if p[0] <= last || p[0] > MaxEvidencePatchDays || p[1] <= 0 {
					return bad("group %q, release %s: patch days must increase within 0 to %d with positive counts", r.GroupID, rel.Version, MaxEvidencePatchDays)
				}
				last, n = p[0], n+p[1]
			}
			if n > rel.Required {
				return bad("group %q, release %s: %d patched of %d required", r.GroupID, rel.Version, n, rel.Required)
			}
		}
	}
	for _, e := range d.Exceptions {
		if e.ID == "" || len(e.ID) > maxEvidenceText || len(e.Scope) > 16 || len(e.GroupID) > 64 ||
			len(e.Reason) > maxEvidenceText || len(e.GrantedBy) > maxEvidenceText {
			return bad("a malformed exception")
		}
	}
	return day.AddDate(0, 0, -MaxEvidenceDays).Format(time.DateOnly), nil
}

// CheckEvidenceRange validates EvidenceDays' range.
func CheckEvidenceRange(from, to string) error {
	f, err := ParseDay(from)
	if err != nil {
		return fmt.Errorf("evidence from: %w", err)
	}
	t, err := ParseDay(to)
	if err != nil {
		return fmt.Errorf("evidence to: %w", err)
	}
	if f.After(t) {
		return fmt.Errorf("evidence from %s is after to %s", from, to)
	}
	return nil
}
