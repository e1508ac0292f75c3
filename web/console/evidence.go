package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sundial-mdm/sundial/api"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// EvidenceReporter builds the compliance evidence report
// (scheduler.EvidenceRecorder).
type EvidenceReporter interface {
	Report(ctx context.Context, q scheduler.EvidenceQuery) (*scheduler.EvidenceReport, error)
}

// EvidenceData is the evidence page: the form's values, the report, its
// chart and the CSV link.
type EvidenceData struct {
	Query  scheduler.EvidenceQuery
	Report *scheduler.EvidenceReport
	// Rows are the report's rows of the charted scope (the fleet, or the
	// group asked for).
	Rows   []scheduler.EvidenceDayRow
	Chart  *LineChart
	CSVURL string
}

// evidenceQuery reads the page's query (empty fields take the report's
// defaults).
func evidenceQuery(r *http.Request) (scheduler.EvidenceQuery, error) {
	q, err := api.EvidenceQueryOf(r.URL.Query())
	var ae *api.Error
	if errors.As(err, &ae) {
		return q, &userError{http.StatusBadRequest, ae.Message}
	}
	return q, err
}

func (c *Console) evidenceReport(r *http.Request) (*scheduler.EvidenceReport, error) {
	if c.cfg.Evidence == nil {
		return nil, &userError{http.StatusNotFound, "this server keeps no compliance evidence"}
	}
	q, err := evidenceQuery(r)
	if err != nil {
		return nil, err
	}
	rep, err := c.cfg.Evidence.Report(r.Context(), q)
	if errors.Is(err, scheduler.ErrInvalid) {
		return nil, &userError{http.StatusBadRequest, strings.TrimPrefix(err.Error(), scheduler.ErrInvalid.Error()+": ")}
	}
	return rep, err
}

func (c *Console) evidencePage(w http.ResponseWriter, r *http.Request, ss *session) (string, *view, error) {
	rep, err := c.evidenceReport(r)
	if err != nil {
		return "", nil, err
	}
	q := scheduler.EvidenceQuery{From: rep.From, To: rep.To, Group: rep.Group, WithinDays: rep.WithinDays}
	d := &EvidenceData{Query: q, Report: rep}
	for _, row := range rep.Rows {
		if row.GroupID == rep.Group {
			d.Rows = append(d.Rows, row)
		}
	}
	d.Chart = evidenceChart(d.Rows, rep.From, rep.To)
	v := url.Values{"from": {rep.From}, "to": {rep.To}, "within": {fmt.Sprint(rep.WithinDays)}}
	if rep.Group != "" {
		v.Set("group", rep.Group)
	}
	d.CSVURL = Prefix + "evidence.csv?" + v.Encode()
	return "evidence", &view{Title: "Compliance evidence", Nav: "evidence", Data: d}, nil
}

// evidenceCSV serves the report as the API's CSV (formulas neutralised).
func (c *Console) evidenceCSV(w http.ResponseWriter, r *http.Request, ss *session) (string, *view, error) {
	rep, err := c.evidenceReport(r)
	if err != nil {
		return "", nil, err
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="sundial-evidence-%s-%s.csv"`, rep.From, rep.To))
	if err := api.WriteEvidenceCSV(w, rep); err != nil {
		c.log.Warn("console: write evidence csv", "err", err)
	}
	return "", nil, nil
}

// evidenceChart draws, for each day of from..to, the share of managed Macs
// compliant and the share of Macs past their deadline that met it.
func evidenceChart(rows []scheduler.EvidenceDayRow, from, to string) *LineChart {
	if len(rows) == 0 {
		return nil
	}
	const w, h, left, bottom, right, top = 560, 220, 40, 190, 550, 10
	ch := &LineChart{Width: w, Height: h, Left: left, Bottom: bottom, Right: right, Top: top}
	first, _ := time.Parse(time.DateOnly, from)
	last, _ := time.Parse(time.DateOnly, to)
	span := max(1, int(last.Sub(first)/(24*time.Hour)))
	xOf := func(day string) int {
		d, _ := time.Parse(time.DateOnly, day)
		return left + int(d.Sub(first)/(24*time.Hour))*(right-left)/span
	}
	yOf := func(pct float64) int { return bottom - int(pct*float64(bottom-top)/100) }
	for _, p := range []int{0, 50, 100} {
		ch.Grid = append(ch.Grid, GridLine{Y: yOf(float64(p)), Label: fmt.Sprintf("%d%%", p)})
	}
	step := max(1, (span+1)/5)
	for i := 0; i <= span; i += step {
		d := first.AddDate(0, 0, i)
		ch.Days = append(ch.Days, DayTick{X: xOf(d.Format(time.DateOnly)), Label: d.Format("2 Jan")})
	}
	for i, s := range []struct {
		name  string
		value func(r *scheduler.EvidenceDayRow) (float64, string, bool)
	}{
		{"compliant", func(r *scheduler.EvidenceDayRow) (float64, string, bool) {
			return r.CompliantPercent, fmt.Sprintf("%d of %d managed Macs compliant", r.Compliant, r.Managed), r.Managed > 0
		}},
		{"on time", func(r *scheduler.EvidenceDayRow) (float64, string, bool) {
			return r.OnTimePercent, fmt.Sprintf("%d of %d Macs past their deadline met it", r.OnTime, r.DeadlinePassed), r.DeadlinePassed > 0
		}},
	} {
		var pts []string
		var dots []Dot
		last := ""
		for j := range rows {
			v, title, ok := s.value(&rows[j])
			if !ok {
				continue
			}
			x, y := xOf(rows[j].Day), yOf(v)
			pts = append(pts, fmt.Sprintf("%d,%d", x, y))
			dots = append(dots, Dot{X: x, Y: y, Title: rows[j].Day + ": " + title})
			last = fmt.Sprintf("%.1f%% on %s", v, rows[j].Day)
		}
		if len(dots) == 0 {
			continue
		}
		ch.Series = append(ch.Series, Series{Group: s.name, Class: fmt.Sprintf("series series-%d", i), Points: strings.Join(pts, " "), Dots: dots, Last: last})
	}
	return ch
}
