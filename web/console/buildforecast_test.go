package console

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// TestBuildForecastListsWorstFirst: the Macs listed are the marked Macs
// of the window, worst first, cut at limit, with the count of all of
// them, as a plain sort of every listed row gives (sortedRows).
func TestBuildForecastListsWorstFirst(t *testing.T) {
	now := time.Date(2026, 3, 16, 9, 0, 0, 0, time.UTC)
	rep := &scheduler.ComplianceReport{GeneratedAt: now}
	var marks []storage.ForecastMark
	phases := []softwareupdate.Phase{softwareupdate.PhaseNotify, softwareupdate.PhaseCompliant, softwareupdate.PhaseFailed,
		softwareupdate.PhasePending}
	for i := range 300 {
		id := fmt.Sprintf("MAC-%03d", (i*37)%300)
		row := scheduler.ReportRow{DeviceID: id, SerialNumber: "S" + id, DeviceName: "N" + id, Phase: phases[i%len(phases)]}
		if i%5 != 0 {
			row.Deadline = now.Add(time.Duration(i%11-2) * 24 * time.Hour)
		}
		rep.Rows = append(rep.Rows, row)
		if i%3 != 0 {
			marks = append(marks, storage.ForecastMark{DeviceID: id, Forecast: []string{"at risk", "will fail"}[i%2],
				Causes: []string{"agent alive", "free disk"}[:1+i%2], Deadline: now.Add(time.Duration(i%4) * time.Hour), Since: now})
		}
	}
	slices.SortFunc(marks, func(a, b storage.ForecastMark) int { return cmp.Compare(a.DeviceID, b.DeviceID) })
	for _, limit := range []int{1, 10, 500} {
		f, rows, total := BuildForecast(rep, marks, limit)
		want := sortedRows(rep, marks)
		if total != len(want) || !reflect.DeepEqual(rows, want[:min(limit, len(want))]) {
			t.Fatalf("limit %d: %d rows of %d, want %d of %d", limit, len(rows), total, min(limit, len(want)), len(want))
		}
		if f.AtRisk+f.WillFail != total || f.AtRisk == 0 || f.WillFail == 0 {
			t.Fatalf("summary %+v, %d listed", f, total)
		}
	}
}

// sortedRows is every marked Mac of the window as a row, sorted whole.
func sortedRows(rep *scheduler.ComplianceReport, marks []storage.ForecastMark) []ReadinessRow {
	until := rep.GeneratedAt.Add(ForecastWindowDays * 24 * time.Hour)
	var rows []ReadinessRow
	for i := range rep.Rows {
		row := &rep.Rows[i]
		if !inWindow(row, until) {
			continue
		}
		for _, m := range marks {
			if m.DeviceID == row.DeviceID {
				rows = append(rows, ReadinessRow{Mark: m, Serial: row.SerialNumber, Name: row.DeviceName})
			}
		}
	}
	rank := map[string]int{"will fail": 0, "at risk": 1}
	slices.SortFunc(rows, func(a, b ReadinessRow) int {
		return cmp.Or(cmp.Compare(rank[a.Mark.Forecast], rank[b.Mark.Forecast]), a.Mark.Deadline.Compare(b.Mark.Deadline),
			cmp.Compare(a.Mark.DeviceID, b.Mark.DeviceID))
	})
	return rows
}
