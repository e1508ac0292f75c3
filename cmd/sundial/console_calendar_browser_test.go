package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// TestConsoleBusinessCalendarInBrowser: in a real Chromium, the policy
// editor takes a business calendar; its what-if says which deadline the
// calendar moves and why, the saved policy carries the calendar, and the
// device page of a Mac of the group explains its moved deadline.
func TestConsoleBusinessCalendarInBrowser(t *testing.T) {
	f := newConsoleFleet(t)
	ctx := browser(t)
	ts := f.ts
	base := ts.url
	day := time.Now().UTC().AddDate(0, 0, 20)
	date := day.Format(time.DateOnly)
	moved := day.Format("Mon 2006-01-02") + " 12:00 is a holiday (Company Day) → " + day.AddDate(0, 0, 1).Format("Mon 2006-01-02") + " 09:00 UTC"

	browse(t, ctx, "sign in", signInActions(base, f.adminKey)...)
	var whatIf string
	browse(t, ctx, "preview a calendar",
		chromedp.Navigate(base+"/ui/policies/pilot"),
		chromedp.WaitVisible(chromedp.CSS("#policy-form")),
		chromedp.SetValue(chromedp.CSS("#date"), date),
		chromedp.SetValue(chromedp.CSS("#time_of_day"), "12:00"),
		chromedp.Click(chromedp.CSS("#calendar")),
		chromedp.SetValue(chromedp.CSS("#working_days"), "mon-sun"),
		chromedp.SetValue(chromedp.CSS("#holidays"), date+" Company Day\n12-25 Christmas Day"),
		chromedp.Click(chromedp.CSS("#preview")),
		chromedp.WaitVisible(chromedp.CSS("#whatif-moved")),
		into(&whatIf, chromedp.Text(chromedp.CSS("#whatif"))),
		shot(t, "policy-calendar-whatif"))
	if !strings.Contains(whatIf, "2 deadlines moved to working time") || !strings.Contains(whatIf, moved) {
		t.Fatalf("what-if says %q, want 2 moves: %q", whatIf, moved)
	}
	browse(t, ctx, "save the calendar",
		chromedp.Click(chromedp.CSS("#save")),
		chromedp.WaitVisible(chromedp.CSS("#flash")))
	rec, err := ts.admin.Policy(t.Context(), "pilot")
	if err != nil {
		t.Fatal(err)
	}
	want := &softwareupdate.Calendar{WorkingDays: "mon-sun", Holidays: []softwareupdate.Holiday{{Date: date, Name: "Company Day"}, {Date: "12-25", Name: "Christmas Day"}}}
	if c := rec.Policy.Calendar; c == nil || c.WorkingDays != want.WorkingDays || c.WorkingHours != "" || len(c.Holidays) != 2 ||
		c.Holidays[0] != want.Holidays[0] || c.Holidays[1] != want.Holidays[1] {
		t.Fatalf("saved calendar = %+v, want %+v", rec.Policy.Calendar, want)
	}
	schedState(t, ts, f.macs[0].UDID, func(st *scheduler.State) bool { return st.DeadlineMoved == moved })
	var shown, editor string
	browse(t, ctx, "device page",
		chromedp.Navigate(base+"/ui/devices/"+f.macs[0].UDID),
		chromedp.WaitVisible(chromedp.CSS("#deadline-moved")),
		into(&shown, chromedp.Text(chromedp.CSS("#deadline-moved"))),
		shot(t, "device-deadline-moved"),
		chromedp.Navigate(base+"/ui/policies/pilot"),
		chromedp.WaitVisible(chromedp.CSS("#policy-form")),
		into(&editor, chromedp.Value(chromedp.CSS("#holidays"))))
	if shown != moved+" (business calendar)" {
		t.Errorf("device page says %q, want %q", shown, moved)
	}
	if editor != date+" Company Day\n12-25 Christmas Day\n" {
		t.Errorf("the editor shows the holidays as %q", editor)
	}
}
