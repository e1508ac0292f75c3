package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/api"
	"github.com/sundial-mdm/sundial/mdm/mdmtest"
	"github.com/sundial-mdm/sundial/softwareupdate"
)

// TestRingsCLI: sundial rings set / show / promote / remove over the real
// server, with two simulated Macs: the broad ring is held behind the pilot
// (in rings show and devices show) until promoted; bad input exits 2,
// unknown plans 3, a read key 4; every change is audited.
func TestRingsCLI(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	ctx := t.Context()
	rk, err := ts.admin.CreateAPIKeyWithRole(ctx, "viewer", api.RoleRead)
	if err != nil {
		t.Fatal(err)
	}
	cliWith := func(key string, args ...string) (int, string) {
		env := map[string]string{"SUNDIAL_URL": ts.url, "SUNDIAL_API_KEY": key}
		var out, errb bytes.Buffer
		code := run(ctx, append(args, "--data-dir", ts.dir), func(k string) string { return env[k] }, &out, &errb)
		return code, out.String() + errb.String()
	}
	cli := func(args ...string) (int, string) { return cliWith(ts.admin.APIKey, args...) }

	macs := map[string]*mdmtest.Device{}
	for _, g := range []string{"pilot", "broad"} {
		mac := ts.enroll(t, mdmtest.WithSupervised(true), mdmtest.WithOS("15.1", "24B83"))
		if _, err := mac.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		macs[g] = mac
		if _, err := ts.admin.CreateGroup(ctx, g, g); err != nil {
			t.Fatal(err)
		}
		if err := ts.admin.AssignDevices(ctx, g, []string{mac.UDID}); err != nil {
			t.Fatal(err)
		}
		if _, err := ts.admin.SetPolicy(ctx, g, softwareupdate.Policy{Mode: softwareupdate.ModeManual, MinimumVersion: "15.2",
			Date: time.Now().UTC().AddDate(0, 0, 10).Format(time.DateOnly), TimeOfDay: "17:00", TimeZone: "UTC"}); err != nil {
			t.Fatal(err)
		}
	}
	// The gate counts a Mac in the group of its last evaluation: wait until
	// both were evaluated in their new groups, so the plan's first tally
	// sees one Mac in each.
	for g, mac := range macs {
		waitFor(t, func() bool {
			rep, err := ts.admin.DeviceUpdate(ctx, mac.UDID, 0)
			return err == nil && rep.State != nil && rep.State.GroupID == g
		})
	}

	for _, bad := range [][]string{
		{"rings", "set", "macos"}, // no groups
		{"rings", "set", "macos", "--groups", "pilot"},
		{"rings", "set", "macos", "--groups", "pilot,pilot"},
		{"rings", "set", "macos", "--groups", "pilot,broad", "--min-compliant", "101"},
		{"rings", "set", "macos", "--groups", "pilot,broad", "--max-failed", "-1"},
		{"rings", "set", "macos", "--groups", "pilot,broad", "--max-wait", "90m"},
		{"rings", "set", "macos", "--groups", "pilot,broad", "--max-wait", "31d"},
		{"rings", "set", "Not A Plan", "--groups", "pilot,broad"},
		{"rings", "promote", "macos"},
		{"rings", "show", "a", "b"},
	} {
		if code, out := cli(bad...); code != exitUsage {
			t.Errorf("%q = %d %q, want exit %d", bad, code, out, exitUsage)
		}
	}
	if code, out := cli("rings", "set", "macos", "--groups", "pilot,broad", "--min-compliant", "101"); !strings.Contains(out, "--min-compliant 101") {
		t.Errorf("the message names the flag: %d %q", code, out)
	}
	for _, nf := range [][]string{
		{"rings", "set", "macos", "--groups", "pilot,missing"},
		{"rings", "show", "macos"},
		{"rings", "promote", "macos", "broad"},
		{"rings", "remove", "macos"},
	} {
		if code, out := cli(nf...); code != exitNotFound {
			t.Errorf("%q = %d %q, want exit %d", nf, code, out, exitNotFound)
		}
	}
	if code, out := cli("rings", "show", "-o", "json"); code != 0 || !strings.Contains(out, `"plans": []`) {
		t.Errorf("show before any plan = %d %q", code, out)
	}
	if code, out := cliWith(rk.Secret, "rings", "set", "macos", "--groups", "pilot,broad"); code != exitAuth {
		t.Errorf("set with a read key = %d %q, want exit %d", code, out, exitAuth)
	}

	if code, out := cli("rings", "set", "macos", "--groups", "pilot,broad", "--min-compliant", "95", "--max-wait", "2d"); code != 0 ||
		!strings.Contains(out, "pilot → broad") || !strings.Contains(out, "≥ 95 % compliant, ≤ 2 % failed, max wait 2d") {
		t.Fatalf("set = %d %q", code, out)
	}
	show := func(key string) api.RingPlanView {
		t.Helper()
		code, out := cliWith(key, "rings", "show", "macos", "-o", "json")
		var v api.RingPlanView
		if code != 0 || json.Unmarshal([]byte(out), &v) != nil {
			t.Fatalf("rings show -o json = %d %q", code, out)
		}
		return v
	}
	waitFor(t, func() bool { v := show(ts.admin.APIKey); return v.Evaluated && v.Rings[1].Held })
	v := show(rk.Secret) // a read key may read
	if b := v.Rings[1]; b.HeldBy != "pilot" || !strings.Contains(b.Reason, "0 of 1 Macs compliant (< 95 %)") || b.Started != nil || b.Tally == nil || b.Tally.Eligible != 1 {
		t.Fatalf("broad ring = %+v", b)
	}
	if code, out := cli("rings", "show"); code != 0 || !strings.Contains(out, "held by pilot: 0 of 1 Macs compliant") || !strings.Contains(out, "0/1") {
		t.Errorf("rings show = %d %q", code, out)
	}
	waitFor(t, func() bool {
		rep, err := ts.admin.DeviceUpdate(ctx, macs["broad"].UDID, 0)
		return err == nil && rep.State != nil && strings.Contains(rep.State.Reason, "held: ring pilot")
	})
	if code, out := cli("devices", "show", macs["broad"].UDID); code != 0 || !strings.Contains(out, "held: ring pilot has not passed its health gate") {
		t.Errorf("devices show of a held Mac = %d %q", code, out)
	}

	if code, out := cli("report", "compliance"); code != 0 || !strings.Contains(out, "HELD BY A RING GATE") ||
		!regexp.MustCompile(`broad\s+1\s+held: ring pilot`).MatchString(out) {
		t.Errorf("report compliance = %d %q", code, out)
	}
	metrics := func() string {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.url+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+ts.admin.APIKey)
		resp, err := ts.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	for _, series := range []string{`sundial_rings_held{group="broad",plan="macos"} 1`, `sundial_rings_held{group="pilot",plan="macos"} 0`} {
		if m := metrics(); !strings.Contains(m, series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}
	for _, args := range [][]string{{"rings", "promote", "macos", "broad"}, {"rings", "remove", "macos"}} {
		if code, out := cliWith(rk.Secret, args...); code != exitAuth {
			t.Errorf("%q with a read key = %d %q, want exit %d", args, code, out, exitAuth)
		}
	}
	if code, out := cli("rings", "promote", "macos", "pilot"); code != exitUsage || !strings.Contains(out, "first ring") {
		t.Errorf("promote the first ring = %d %q, want exit %d", code, out, exitUsage)
	}
	if code, out := cli("rings", "promote", "macos", "broad"); code != 0 || !strings.Contains(out, "promoted ring broad of plan macos") {
		t.Fatalf("promote = %d %q", code, out)
	}
	waitFor(t, func() bool {
		v := show(ts.admin.APIKey)
		return v.Evaluated && !v.Rings[1].Held && v.Rings[1].Started != nil
	})
	waitFor(t, func() bool {
		rep, err := ts.admin.DeviceUpdate(ctx, macs["broad"].UDID, 0)
		return err == nil && rep.State != nil && !strings.Contains(rep.State.Reason, "held") && !rep.State.Deadline.IsZero()
	})
	if m := metrics(); !strings.Contains(m, `sundial_rings_held{group="broad",plan="macos"} 0`) {
		t.Errorf("/metrics after the promotion lacks the broad ring at 0")
	}
	if code, out := cli("rings", "show", "macos"); code != 0 || !strings.Contains(out, "opened by hand") {
		t.Errorf("rings show after the promotion = %d %q", code, out)
	}

	if code, out := cli("rings", "remove", "macos"); code != 0 || !strings.Contains(out, "removed ring plan macos") {
		t.Fatalf("remove = %d %q", code, out)
	}
	if code, out := cli("rings", "remove", "macos"); code != exitNotFound {
		t.Errorf("remove twice = %d %q, want exit %d", code, out, exitNotFound)
	}
	acts := auditActions(t, ts)
	if len(acts["rings.set"]) != 1 || len(acts["rings.promote"]) != 1 || len(acts["rings.remove"]) != 1 {
		t.Errorf("audit: %d sets, %d promotions, %d removals; want 1 each", len(acts["rings.set"]), len(acts["rings.promote"]), len(acts["rings.remove"]))
	}
	if p := acts["rings.promote"]; len(p) == 1 && (p[0].Subject != "rings/macos/pilot" || p[0].Actor == "") {
		t.Errorf("promotion audit = %+v", p[0])
	}
}
