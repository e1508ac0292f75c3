package storage

import (
	"context"
	"fmt"
	"time"
)

// ComplianceDay is one group's compliance on one UTC day, kept for the
// console's chart of compliance over time.
type ComplianceDay struct {
	Day       string `json:"day"` // YYYY-MM-DD (UTC)
	GroupID   string `json:"group_id"`
	Devices   int    `json:"devices"`
	Managed   int    `json:"managed"`
	Compliant int    `json:"compliant"`
}

// Bounds of the compliance history.
const (
	// MaxComplianceDays is how many days are kept: a day older than this
	// many days before the newest one written is dropped.
	MaxComplianceDays = 400
	// MaxComplianceGroups bounds the rows of one day.
	MaxComplianceGroups = 200
)

// ComplianceDayStore keeps daily compliance per group.
type ComplianceDayStore interface {
	// PutComplianceDay replaces the rows of day with rows (whose Day must be
	// day), and drops the days more than MaxComplianceDays before it. Bad
	// input (a malformed day, more than MaxComplianceGroups rows, an empty
	// or long group, negative counts) gives an error and changes nothing.
	PutComplianceDay(ctx context.Context, day string, rows []ComplianceDay) error
	// ComplianceDays returns the rows of the days from since (YYYY-MM-DD)
	// on, by day and then group.
	ComplianceDays(ctx context.Context, since string) ([]ComplianceDay, error)
}

// CheckComplianceDay validates PutComplianceDay's input and returns the
// first day to keep.
func CheckComplianceDay(day string, rows []ComplianceDay) (keepFrom string, err error) {
	d, err := time.Parse(time.DateOnly, day)
	if err != nil || d.Format(time.DateOnly) != day {
		return "", fmt.Errorf("compliance day %q: want YYYY-MM-DD", truncate(day))
	}
	if len(rows) > MaxComplianceGroups {
		return "", fmt.Errorf("compliance day %s: %d groups, at most %d", day, len(rows), MaxComplianceGroups)
	}
	seen := map[string]bool{}
	for _, r := range rows {
		switch {
		case r.Day != day:
			return "", fmt.Errorf("compliance day %s: a row of day %q", day, truncate(r.Day))
		case r.GroupID == "" || len(r.GroupID) > 64:
			return "", fmt.Errorf("compliance day %s: group must be 1 to 64 bytes", day)
		case seen[r.GroupID]:
			return "", fmt.Errorf("compliance day %s: group %s twice", day, r.GroupID)
		case r.Devices < 0 || r.Managed < 0 || r.Compliant < 0 || r.Managed > r.Devices || r.Compliant > r.Managed:
			return "", fmt.Errorf("compliance day %s, group %s: counts must satisfy 0 <= compliant <= managed <= devices", day, r.GroupID)
		}
		seen[r.GroupID] = true
	}
	return d.AddDate(0, 0, -MaxComplianceDays).Format(time.DateOnly), nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
