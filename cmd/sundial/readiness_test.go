package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm/mdmtest"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// TestReadinessCLI: sundial readiness over the real server lists an
// enrolled simulated Mac whose deadline is within the window, at risk
// because no agent reports from it, in a table and as JSON.
func TestReadinessCLI(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	env := map[string]string{"SUNDIAL_URL": ts.url, "SUNDIAL_API_KEY": ts.admin.APIKey}
	cli := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(t.Context(), append(args, "--data-dir", ts.dir), func(k string) string { return env[k] }, &out, &errb)
		return code, out.String() + errb.String()
	}
	for _, bad := range [][]string{{"readiness", "--days", "0"}, {"readiness", "--days", "91"}, {"readiness", "--group", "Bad Group"}} {
		if code, out := cli(bad...); code != exitUsage {
			t.Errorf("%q = %d %q, want exit %d", bad, code, out, exitUsage)
		}
	}
	mac := ts.enroll(t, mdmtest.WithOS("15.1", "24B83"))
	if _, err := mac.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().UTC().AddDate(0, 0, 6)
	if _, err := ts.admin.SetPolicy(t.Context(), scheduler.DefaultGroupID, softwareupdate.Policy{Mode: softwareupdate.ModeManual,
		MinimumVersion: "15.2", Date: deadline.Format(time.DateOnly), TimeOfDay: "23:59", TimeZone: "UTC"}); err != nil {
		t.Fatal(err)
	}
	var rep scheduler.ReadinessReport
	waitFor(t, func() bool {
		code, out := cli("readiness", "-o", "json")
		return code == 0 && json.Unmarshal([]byte(out), &rep) == nil && len(rep.Macs) == 1
	})
	if m := rep.Macs[0]; m.DeviceID != mac.UDID || m.Forecast != scheduler.ForecastAtRisk || !strings.Contains(strings.Join(m.Reasons, ";"), "no agent") {
		t.Fatalf("forecast = %+v", m)
	}
	if code, out := cli("readiness", "--days", "3"); code != 0 || strings.Contains(out, mac.UDID) {
		t.Errorf("3-day readiness = %d %q, want the Mac left out (deadline in 6 days)", code, out)
	}
	if code, out := cli("readiness", "--group", "default"); code != 0 || !strings.Contains(out, mac.UDID) || !strings.Contains(out, "at risk") {
		t.Errorf("readiness table = %d %q", code, out)
	}
}
