package console

import (
	"fmt"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
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
