package console

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// Chart is a bar chart drawn on the server as SVG: coordinates are
// computed here so the template only places elements (no inline styles,
// which the Content-Security-Policy forbids).
type Chart struct {
	Width, Height int
	Bars          []Bar
	// Max is the largest value, the top of the scale.
	Max   int
	Title string
	// AxisY is the baseline; LabelY where day labels sit.
	AxisY, LabelY int
}

// Bar is one bar with its label and value.
type Bar struct {
	X, Y, W, H  int
	LabelX      int
	Label       string
	Value       int
	ValueY      int
	Description string
}

// Chart geometry.
const (
	chartWidth  = 560
	chartHeight = 200
	chartBottom = 30 // room for labels
	chartTop    = 20 // room for values
)

// deadlineChart draws how many Macs reach their deadline on each day.
func deadlineChart(days []scheduler.DayCount) Chart {
	ch := Chart{Width: chartWidth, Height: chartHeight, Title: "Deadlines in the next 7 days",
		AxisY: chartHeight - chartBottom, LabelY: chartHeight - chartBottom/3}
	for _, d := range days {
		ch.Max = max(ch.Max, d.Count)
	}
	if len(days) == 0 {
		return ch
	}
	slot := chartWidth / len(days)
	plot := chartHeight - chartBottom - chartTop
	for i, d := range days {
		h := 0
		if ch.Max > 0 {
			h = d.Count * plot / ch.Max
		}
		if d.Count > 0 && h < 2 {
			h = 2 // a day with deadlines stays visible
		}
		label := d.Date
		if t, err := time.Parse(time.DateOnly, d.Date); err == nil {
			label = t.Format("Mon 2 Jan")
		}
		x := i*slot + slot/6
		ch.Bars = append(ch.Bars, Bar{
			X: x, W: slot * 2 / 3, H: h, Y: chartTop + plot - h,
			LabelX: i*slot + slot/2, Label: label, Value: d.Count, ValueY: chartTop + plot - h - 4,
			Description: fmt.Sprintf("%s: %d Macs", d.Date, d.Count),
		})
	}
	return ch
}

// ChartDays is how many days the chart of compliance over time shows.
const ChartDays = 30

// chartSeries bounds the groups drawn (the largest); the rest are in the
// table below the chart.
const chartSeries = 8

// LineChart is compliance in percent per group over days, drawn as SVG
// polylines whose points are computed here.
type LineChart struct {
	Width, Height int
	Left, Bottom  int // plot origin
	Right, Top    int
	Series        []Series
	Days          []DayTick
	Grid          []GridLine
}

// Series is one group's line.
type Series struct {
	Group  string
	Class  string // series-N, colored by the stylesheet
	Points string // "x,y x,y ..."
	Dots   []Dot
	Last   string // the latest value, for the legend
}

// Dot marks one day's value.
type Dot struct {
	X, Y  int
	Title string
}

// DayTick labels a day on the x axis.
type DayTick struct {
	X     int
	Label string
}

// GridLine is a horizontal percentage line.
type GridLine struct {
	Y     int
	Label string
}

func historyChart(days []storage.ComplianceDay, end time.Time) *LineChart {
	const w, h, left, bottom, right, top = 560, 220, 40, 190, 550, 10
	ch := &LineChart{Width: w, Height: h, Left: left, Bottom: bottom, Right: right, Top: top}
	last := end.UTC().Truncate(24 * time.Hour)
	first := last.AddDate(0, 0, 1-ChartDays)
	xOf := func(day string) (int, bool) {
		d, err := time.Parse(time.DateOnly, day)
		if err != nil || d.Before(first) || d.After(last) {
			return 0, false
		}
		i := int(d.Sub(first) / (24 * time.Hour))
		return left + i*(right-left)/(ChartDays-1), true
	}
	yOf := func(pct float64) int { return bottom - int(pct*float64(bottom-top)/100) }
	for _, p := range []int{0, 50, 100} {
		ch.Grid = append(ch.Grid, GridLine{Y: yOf(float64(p)), Label: fmt.Sprintf("%d%%", p)})
	}
	for i := 0; i < ChartDays; i += 7 {
		d := first.AddDate(0, 0, i)
		x, _ := xOf(d.Format(time.DateOnly))
		ch.Days = append(ch.Days, DayTick{X: x, Label: d.Format("2 Jan")})
	}
	// The groups with the most managed Macs on their latest day.
	latest := map[string]storage.ComplianceDay{}
	byGroup := map[string][]storage.ComplianceDay{}
	for _, d := range days {
		if d.Managed == 0 {
			continue // nothing to be compliant with: no point
		}
		byGroup[d.GroupID] = append(byGroup[d.GroupID], d)
		latest[d.GroupID] = d
	}
	groups := make([]string, 0, len(byGroup))
	for g := range byGroup {
		groups = append(groups, g)
	}
	slices.SortFunc(groups, func(a, b string) int {
		return cmp.Or(cmp.Compare(latest[b].Managed, latest[a].Managed), cmp.Compare(a, b))
	})
	for i, g := range groups[:min(chartSeries, len(groups))] {
		var pts []string
		var dots []Dot
		for _, d := range byGroup[g] {
			if x, ok := xOf(d.Day); ok {
				y := yOf(pct(d.Compliant, d.Managed))
				pts = append(pts, fmt.Sprintf("%d,%d", x, y))
				dots = append(dots, Dot{X: x, Y: y, Title: fmt.Sprintf("%s %s: %d of %d compliant", g, d.Day, d.Compliant, d.Managed)})
			}
		}
		l := latest[g]
		ch.Series = append(ch.Series, Series{Group: g, Class: fmt.Sprintf("series series-%d", i), Points: strings.Join(pts, " "), Dots: dots,
			Last: fmt.Sprintf("%.1f%% on %s", pct(l.Compliant, l.Managed), l.Day)})
	}
	return ch
}
