package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm/mdmtest"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// TestDevicesRetry: `sundial devices retry` clears a Mac's failure, queues
// its next step at once and is audited; a group retry covers the group's
// failed Macs; unknown devices and groups exit 3, bad usage 2.
func TestDevicesRetry(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	// macOS 13: the legacy path.
	mac := ts.enroll(t, mdmtest.WithSupervised(true), mdmtest.WithOS("13.5", "22G74"),
		mdmtest.WithHardware(mdmtest.Hardware{ProductName: "Mac14,2", ModelName: "MacBook Air", SoftwareUpdateDeviceID: "J413AP", IsAppleSilicon: true}))
	if _, err := mac.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	board := ts.device(t, mac.UDID).Inventory.SoftwareUpdateDeviceID
	rel, ok := catalog.Default().LatestInMajor(board, 13)
	if !ok || !catalog.MustParseVersion(mac.OSVersion()).Less(rel.Version) {
		t.Skipf("no newer macOS 13 release for %s", board)
	}
	// The Mac's software update service fails every scan.
	mac.AnswerError("ScheduleOSUpdateScan", -1)
	if _, err := ts.app.manager.SetPolicy(t.Context(), "admin", scheduler.DefaultGroupID, softwareupdate.Policy{
		Mode: softwareupdate.ModeManual, MinimumVersion: rel.Version.String(),
		Date: time.Now().UTC().AddDate(0, 0, 20).Format("2006-01-02"), TimeOfDay: "17:00", TimeZone: "UTC",
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		ts.app.sched.RunOnce(t.Context())
		if _, err := mac.Connect(t.Context()); err != nil {
			t.Fatal(err)
		}
		rep, err := ts.admin.DeviceUpdate(t.Context(), mac.UDID, 0)
		return err == nil && rep.State != nil && strings.Contains(rep.State.Failure, "Simulated failure")
	})

	env := map[string]string{"SUNDIAL_URL": ts.url, "SUNDIAL_API_KEY": ts.admin.APIKey}
	cli := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(t.Context(), append(args, "--data-dir", ts.dir), func(k string) string { return env[k] }, &out, &errb)
		return code, out.String(), errb.String()
	}
	// devices show says what failed and when it is retried.
	if code, out, errs := cli("devices", "show", mac.UDID); code != 0 || !strings.Contains(out, "failure:   ScheduleOSUpdateScan Error") || !strings.Contains(out, "retry at:") {
		t.Errorf("devices show = %d %q %q", code, out, errs)
	}
	code, out, errs := cli("devices", "retry", mac.UDID, "-o", "json")
	var res scheduler.RetryOutcome
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || !strings.Contains(res.Cleared, "Simulated failure") || res.Step != "scan" {
		t.Fatalf("devices retry = %d %q %q", code, out, errs)
	}
	rep, err := ts.admin.DeviceUpdate(t.Context(), mac.UDID, 0)
	if err != nil || rep.State.Failure != "" || rep.State.Awaiting != "ScheduleOSUpdateScan" {
		t.Fatalf("after retry: %+v, %v", rep.State, err)
	}
	// The scan fails again; the group retry clears it.
	if _, err := mac.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	code, out, errs = cli("devices", "retry", "--group", scheduler.DefaultGroupID)
	if code != 0 || !strings.Contains(out, mac.UDID) || !strings.Contains(out, "Simulated failure") {
		t.Fatalf("devices retry --group = %d %q %q", code, out, errs)
	}
	entries, err := ts.admin.Audit(t.Context(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range entries {
		if strings.HasSuffix(e.Action, ".retry") {
			actions = append(actions, e.Action+" "+e.Subject)
		}
	}
	if want := "device.retry " + mac.UDID + ", group.retry default"; strings.Join(actions, ", ") != want {
		t.Errorf("audited retries = %q, want %q", actions, want)
	}
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"devices", "retry", "00000000-0000-0000-0000-000000000000"}, exitNotFound},
		{[]string{"devices", "retry", "--group", "nope"}, exitNotFound},
		{[]string{"devices", "retry"}, exitUsage},
		{[]string{"devices", "retry", mac.UDID, "--group", "default"}, exitUsage},
	} {
		if code, out, errs := cli(tc.args...); code != tc.want {
			t.Errorf("%v = %d %q %q, want exit %d", tc.args, code, out, errs, tc.want)
		}
	}
}
