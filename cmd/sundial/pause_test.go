package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm/mdmtest"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// TestPauseCLI: sundial pause / pause list / resume over the real admin
// API, with bad input refused (exit 2) and unknown groups or pauses not
// found (exit 3), each change audited.
func TestPauseCLI(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	env := map[string]string{"SUNDIAL_URL": ts.url, "SUNDIAL_API_KEY": ts.admin.APIKey}
	cli := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(t.Context(), append(args, "--data-dir", ts.dir), func(k string) string { return env[k] }, &out, &errb)
		return code, out.String() + errb.String()
	}
	for _, bad := range [][]string{
		{"pause"}, // no reason
		{"pause", "--reason", strings.Repeat("x", 513)}, // too long
		{"pause", "--group", "Not A Group", "--reason", "r"},
		{"pause", "extra-arg", "--reason", "r"},
	} {
		if code, out := cli(bad...); code != exitUsage {
			t.Errorf("%q = %d %q, want exit %d", bad, code, out, exitUsage)
		}
	}
	if code, out := cli("pause", "--group", "missing", "--reason", "r"); code != exitNotFound {
		t.Errorf("pause of a missing group = %d %q, want exit %d", code, out, exitNotFound)
	}
	// A supervised Mac two days before its deadline is in notify.
	mac := ts.enroll(t, mdmtest.WithSupervised(true), mdmtest.WithOS("15.1", "24B83"))
	if _, err := mac.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.admin.SetPolicy(t.Context(), scheduler.DefaultGroupID, softwareupdate.Policy{Mode: softwareupdate.ModeManual,
		MinimumVersion: "15.2", Date: time.Now().UTC().AddDate(0, 0, 2).Format(time.DateOnly), TimeOfDay: "23:59", TimeZone: "UTC",
		MinimumNoticeDays: 1}); err != nil {
		t.Fatal(err)
	}
	phase := func() softwareupdate.Phase {
		rep, err := ts.admin.DeviceUpdate(t.Context(), mac.UDID, 0)
		if err != nil || rep.State == nil {
			return ""
		}
		return rep.State.Phase
	}
	waitFor(t, func() bool { return phase() == softwareupdate.PhaseNotify })
	if code, out := cli("pause", "list", "-o", "json"); code != 0 || !strings.Contains(out, `"pauses": []`) {
		t.Errorf("list before pauses = %d %q", code, out)
	}
	if code, out := cli("pause", "--reason", "15.2 boot loops"); code != 0 || !strings.Contains(out, "paused the fleet") {
		t.Fatalf("pause = %d %q", code, out)
	}
	if code, out := cli("pause", "--group", "default", "--reason", "pilot first", "-o", "json"); code != 0 || !strings.Contains(out, `"group_id": "default"`) {
		t.Fatalf("pause group = %d %q", code, out)
	}
	if code, out := cli("pause", "list"); code != 0 || !strings.Contains(out, "the fleet") || !strings.Contains(out, "15.2 boot loops") || !strings.Contains(out, "group default") {
		t.Errorf("list = %d %q", code, out)
	}
	// The server's scheduler holds the Mac; devices show says why.
	waitFor(t, func() bool { return phase() == softwareupdate.PhasePaused })
	if code, out := cli("devices", "show", mac.UDID); code != 0 || !strings.Contains(out, "paused") || !strings.Contains(out, "15.2 boot loops") {
		t.Errorf("devices show = %d %q", code, out)
	}
	// /healthz and /metrics show the pauses in force.
	keyed := func(path string) *http.Response {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, ts.url+path, nil)
		req.Header.Set("Authorization", "Bearer "+ts.admin.APIKey) // the detailed view needs a key
		resp, err := ts.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := keyed("/healthz")
	var h struct {
		Status string
		Issues []string
	}
	json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if h.Status == "ok" || !slices.ContainsFunc(h.Issues, func(s string) bool {
		return strings.Contains(s, "forced updates paused for the fleet") && strings.Contains(s, "15.2 boot loops")
	}) {
		t.Errorf("healthz = %+v", h)
	}
	resp = keyed("/metrics")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, series := range []string{`sundial_rollout_paused{group=""} 1`, `sundial_rollout_paused{group="default"} 1`} {
		if !strings.Contains(string(body), series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}
	if code, out := cli("resume"); code != 0 || !strings.Contains(out, "resumed the fleet") {
		t.Fatalf("resume = %d %q", code, out)
	}
	if code, out := cli("resume", "--group", "default"); code != 0 {
		t.Fatalf("resume default = %d %q", code, out)
	}
	waitFor(t, func() bool { return phase() == softwareupdate.PhaseNotify })
	if _, err := ts.admin.Pause(t.Context(), "default", "pilot first"); err != nil {
		t.Fatal(err)
	}
	if code, out := cli("resume"); code != exitNotFound {
		t.Errorf("resume twice = %d %q, want exit %d", code, out, exitNotFound)
	}
	ps, err := ts.admin.Pauses(t.Context())
	if err != nil || len(ps) != 1 || ps[0].GroupID != "default" {
		t.Errorf("pauses after resume = %+v, %v", ps, err)
	}
	acts := auditActions(t, ts)
	if len(acts["rollout.pause"]) != 3 || len(acts["rollout.resume"]) != 2 {
		t.Errorf("audit: %d pauses, %d resumes; want 3, 2", len(acts["rollout.pause"]), len(acts["rollout.resume"]))
	}
}

// TestOfflineGraceFlag: --offline-grace above its cap is bad usage.
func TestOfflineGraceFlag(t *testing.T) {
	r := runArgs(t, []string{"server", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--offline-grace", "73h"})
	if r.code != exitUsage || !strings.Contains(r.stderr, "--offline-grace") {
		t.Errorf("server --offline-grace 73h = %+v", r)
	}
}
