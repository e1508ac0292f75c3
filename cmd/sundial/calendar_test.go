package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
)

// TestBusinessCalendarThroughCLI: policy set takes a business calendar
// (working days and hours, holidays listed and from an ICS file), refuses
// a bad one with the flag named and saves nothing; policy show lists it;
// what-if and devices show say the deadline moved off a holiday and where
// to; policy set without calendar flags clears it.
func TestBusinessCalendarThroughCLI(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	mac := ts.enroll(t)
	if _, err := mac.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SUNDIAL_URL": ts.url, "SUNDIAL_API_KEY": ts.admin.APIKey}
	cli := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(t.Context(), append(args, "--data-dir", ts.dir), func(k string) string { return env[k] }, &out, &errb)
		return code, out.String(), errb.String()
	}
	board := ts.device(t, mac.UDID).Inventory.SoftwareUpdateDeviceID
	rel, ok := catalog.Default().LatestInMajor(board, 15)
	if !ok || !catalog.MustParseVersion(mac.OSVersion()).Less(rel.Version) {
		t.Skipf("no newer macOS 15 release for %s in the catalog", board)
	}
	day := time.Now().UTC().AddDate(0, 0, 20)
	deadline := day.Format(time.DateOnly)
	ics := filepath.Join(t.TempDir(), "holidays.ics")
	if err := os.WriteFile(ics, []byte("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:"+day.AddDate(0, 0, 1).Format("20060102")+
		"\r\nSUMMARY:Retreat\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badICS := filepath.Join(t.TempDir(), "bad.ics")
	if err := os.WriteFile(badICS, []byte("BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART:20261126T090000Z\nEND:VEVENT\nEND:VCALENDAR\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	policy := []string{"policy", "set", "default", "--mode", "manual", "--version", rel.Version.String(), "--date", deadline, "--time", "12:00", "--tz", "Europe/Berlin"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--working-hours", "17:00-09:00"}, "--working-hours"},
		{[]string{"--working-days", "mon-fry"}, "--working-days"},
		{[]string{"--holidays", "2026-02-30"}, "--holidays[0] \"2026-02-30\""},
		{[]string{"--holidays-ics", badICS}, "not an all-day event"},
		{[]string{"--holidays-ics", filepath.Join(t.TempDir(), "missing.ics")}, "--holidays-ics"},
	} {
		code, _, errs := cli(append(policy, tc.args...)...)
		if code != exitUsage || !strings.Contains(errs, tc.want) {
			t.Errorf("policy set %v = exit %d, stderr %q; want %d naming %q", tc.args, code, errs, exitUsage, tc.want)
		}
	}
	if code, out, _ := cli("policy", "show", "default"); code != exitNotFound {
		t.Errorf("a refused calendar was saved: policy show = %d %q", code, out)
	}
	withCal := append(policy, "--working-days", "mon-sun", "--working-hours", "09:00-17:00",
		"--holidays", deadline+"=Company Day,12-25=Christmas Day", "--holidays-ics", ics)
	moved := "is a holiday (Company Day) → " + day.AddDate(0, 0, 2).Format("Mon 2006-01-02") + " 09:00 Europe/Berlin"
	if code, out, errs := cli(append([]string{"policy", "what-if"}, withCal[2:]...)...); code != 0 ||
		!strings.Contains(out, "moved by the business calendar: 1") || !strings.Contains(out, moved) {
		t.Errorf("policy what-if = %d %q %q; want the move %q", code, out, errs, moved)
	}
	if code, out, errs := cli(withCal...); code != 0 {
		t.Fatalf("policy set = %d %q %q", code, out, errs)
	}
	if code, out, _ := cli("policy", "show", "default"); code != 0 || !strings.Contains(out, "calendar:  mon-sun 09:00-17:00 in each Mac's zone; 3 holidays") ||
		!strings.Contains(out, "12-25 Christmas Day") || !strings.Contains(out, day.AddDate(0, 0, 1).Format(time.DateOnly)+" Retreat") {
		t.Errorf("policy show = %d %q", code, out)
	}
	waitFor(t, func() bool {
		if _, err := ts.app.sched.RunOnce(t.Context()); err != nil {
			t.Fatal(err)
		}
		rep, err := ts.admin.DeviceUpdate(t.Context(), mac.UDID, 10)
		return err == nil && rep.State != nil && rep.State.DeadlineMoved != ""
	})
	if code, out, _ := cli("devices", "show", mac.UDID); code != 0 || !strings.Contains(out, "moved:     "+day.Format("Mon 2006-01-02")+" 12:00 "+moved+" (business calendar)") ||
		!strings.Contains(out, "deadline moved by the business calendar: ") {
		t.Errorf("devices show = %d %q, want the move and its history entry", code, out)
	}
	// policy set replaces the whole policy: without calendar flags, none.
	if code, out, errs := cli(policy...); code != 0 {
		t.Fatalf("policy set without a calendar = %d %q %q", code, out, errs)
	}
	if code, out, _ := cli("policy", "show", "default"); code != 0 || !strings.Contains(out, "calendar:  none") {
		t.Errorf("policy show after clearing = %d %q", code, out)
	}
}
