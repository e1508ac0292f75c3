package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/sundial-mdm/sundial/api"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

func TestManagedOSThroughCLI(t *testing.T) {
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
	// A target newer than the Mac's version that its hardware supports.
	board := ts.device(t, mac.UDID).Inventory.SoftwareUpdateDeviceID
	rel, ok := catalog.Default().LatestInMajor(board, 15)
	if !ok || !catalog.MustParseVersion(mac.OSVersion()).Less(rel.Version) {
		t.Skipf("no newer macOS 15 release for %s in the catalog", board)
	}
	if code, out, errs := cli("groups", "create", "pilots", "--name", "Pilot Macs"); code != 0 {
		t.Fatalf("groups create = %d %q %q", code, out, errs)
	}
	if code, out, errs := cli("groups", "assign", "pilots", mac.UDID); code != 0 {
		t.Fatalf("groups assign = %d %q %q", code, out, errs)
	}
	deadline := time.Now().UTC().AddDate(0, 0, 20).Format("2006-01-02")
	past := time.Now().UTC().AddDate(0, 0, -2).Format("2006-01-02")
	bad := [][]string{
		{"--mode", "manual", "--version", rel.Version.String(), "--date", past, "--time", "17:00", "--tz", "UTC"},
		{"--mode", "manual", "--version", rel.Version.String(), "--date", deadline, "--time", "17:00", "--tz", "Mars/Olympus"},
		{"--mode", "manual", "--version", "15.99.1", "--date", deadline, "--time", "17:00", "--tz", "UTC"},
		{"--mode", "automatic", "--delay", "0d", "--time", "09:00", "--tz", "UTC"},
		{"--mode", "sometimes"},
	}
	for _, args := range bad {
		code, _, errs := cli(append([]string{"policy", "set", "pilots"}, args...)...)
		if code != exitUsage || errs == "" {
			t.Errorf("policy set %v = exit %d, stderr %q; want %d with a message", args, code, errs, exitUsage)
		}
	}
	if code, _, _ := cli("policy", "show", "pilots"); code != exitNotFound {
		t.Errorf("an invalid policy was saved (policy show exit %d)", code)
	}
	if code, out, _ := cli("audit", "-o", "json"); code != 0 || strings.Contains(out, "policy") {
		t.Errorf("audit after refused policies = %d %q", code, out)
	}
	good := []string{"policy", "set", "pilots", "--mode", "manual", "--version", rel.Version.String(), "--date", deadline, "--time", "17:00", "--tz", "Europe/Berlin"}
	if code, out, errs := cli(good...); code != 0 {
		t.Fatalf("policy set = %d %q %q", code, out, errs)
	}
	if code, out, _ := cli("policy", "show", "pilots"); code != 0 || !strings.Contains(out, rel.Version.String()) || !strings.Contains(out, "Europe/Berlin") {
		t.Errorf("policy show = %d %q", code, out)
	}
	if code, out, _ := cli("audit"); code != 0 || !strings.Contains(out, "pilots") {
		t.Errorf("audit = %d %q", code, out)
	}
	// The scheduler places the Mac: pending, with a deadline in Berlin. (Its
	// own loop runs too, so wait for the pass that saw the new policy.)
	var rep *scheduler.DeviceReport
	waitFor(t, func() bool {
		if _, err := ts.app.sched.RunOnce(t.Context()); err != nil {
			t.Fatal(err)
		}
		var err error
		rep, err = ts.admin.DeviceUpdate(t.Context(), mac.UDID, 10)
		return err == nil && rep.State != nil && rep.State.PolicyRev > 0
	})
	if rep.GroupID != "pilots" || rep.State == nil || rep.State.Phase != softwareupdate.PhasePending || rep.State.Target != rel.Version.String() {
		t.Fatalf("device update = %+v", rep.State)
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	if got := rep.State.Deadline.In(berlin).Format("2006-01-02 15:04"); got != deadline+" 17:00" {
		t.Errorf("deadline = %s, want %s 17:00 Berlin", got, deadline)
	}
	if code, out, _ := cli("devices", "list", "--group", "pilots", "--phase", "pending"); code != 0 || !strings.Contains(out, mac.UDID) {
		t.Errorf("devices list --group pilots --phase pending = %d %q", code, out)
	}
	if code, out, _ := cli("devices", "list", "--phase", "compliant"); code != 0 || strings.Contains(out, mac.UDID) {
		t.Errorf("devices list --phase compliant = %d %q", code, out)
	}
	if code, out, errs := cli(append([]string{"policy", "what-if"}, good[2:]...)...); code != 0 || !strings.Contains(out, "forced to install within 24 h") {
		t.Errorf("policy what-if = %d %q %q", code, out, errs)
	}
	if code, out, _ := cli("devices", "show", mac.UDID); code != 0 || !strings.Contains(out, "pending") || !strings.Contains(out, rel.Version.String()) ||
		!strings.Contains(out, deadline+" 17:00 ") || !strings.Contains(out, "(Europe/Berlin, policy) = ") || !strings.Contains(out, " UTC\n") {
		t.Errorf("devices show = %d %q, want the deadline in Berlin and UTC", code, out)
	}
}

func TestAPIKeysCreateAndRevoke(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	env := map[string]string{"SUNDIAL_URL": ts.url, "SUNDIAL_API_KEY": ts.admin.APIKey}
	cli := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(t.Context(), append(args, "--data-dir", ts.dir), func(k string) string { return env[k] }, &out, &errb)
		return code, out.String() + errb.String()
	}
	k, err := ts.admin.CreateAPIKey(t.Context(), "ci")
	if err != nil || !strings.HasPrefix(k.Secret, "sdl_") {
		t.Fatalf("create = %+v, %v", k, err)
	}
	env["SUNDIAL_API_KEY"] = k.Secret
	if code, out := cli("devices", "list"); code != 0 {
		t.Fatalf("new key refused: %d %s", code, out)
	}
	env["SUNDIAL_API_KEY"] = ts.admin.APIKey
	if code, out := cli("apikeys", "revoke", k.ID); code != 0 {
		t.Fatalf("revoke = %d %s", code, out)
	}
	env["SUNDIAL_API_KEY"] = k.Secret
	if code, _ := cli("devices", "list"); code != exitAuth {
		t.Errorf("revoked key exit = %d, want %d", code, exitAuth)
	}
	env["SUNDIAL_API_KEY"] = ts.admin.APIKey
	if code, out := cli("apikeys", "list"); code != 0 || !strings.Contains(out, "ci") || strings.Contains(out, k.Secret) {
		t.Errorf("list = %d %s", code, out)
	}
	if code, _ := cli("apikeys", "create", ""); code != exitUsage {
		t.Errorf("empty name exit = %d", code)
	}
}

func TestAgentSecretRotation(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	mac := ts.enroll(t)
	if _, err := mac.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	before, err := ts.app.store.AgentSecretHash(t.Context(), mac.UDID)
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.admin.RotateAgentSecret(t.Context(), mac.UDID); err != nil {
		t.Fatal(err)
	}
	after, _ := ts.app.store.AgentSecretHash(t.Context(), mac.UDID)
	if after == before {
		t.Error("secret not rotated")
	}
	sess, err := mac.Connect(t.Context())
	if err != nil || statuses(sess) != "InstallProfile:Acknowledged" {
		t.Errorf("re-delivery = %s, %v", statuses(sess), err)
	}
	if err := ts.admin.RotateAgentSecret(t.Context(), "no-such-mac"); err == nil {
		t.Error("rotation for an unknown device succeeded")
	}
}

func TestEveryAdminEndpointNeedsAValidKey(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	revoked, err := ts.admin.CreateAPIKey(t.Context(), "soon revoked")
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.admin.RevokeAPIKey(t.Context(), revoked.ID); err != nil {
		t.Fatal(err)
	}
	router := ts.app.router
	n := 0
	err = router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tmpl, err := route.GetPathTemplate()
		if err != nil || !strings.HasPrefix(tmpl, "/api/v1/") {
			return nil
		}
		methods, err := route.GetMethods()
		if err != nil {
			return nil
		}
		path := regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(tmpl, "x")
		for _, m := range methods {
			for _, key := range []string{"", "sdl_wrong", revoked.Secret} {
				req, _ := http.NewRequest(m, ts.url+path, strings.NewReader("{}"))
				if key != "" {
					req.Header.Set("Authorization", "Bearer "+key)
				}
				resp, err := ts.hc.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), `"code":"unauthorized"`) {
					t.Errorf("%s %s with key %q: %d %s", m, path, key, resp.StatusCode, body)
				}
				n++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 60 {
		t.Errorf("only %d route checks: the walk missed routes", n)
	}
}

func TestBulkEnqueueAndPushByGroup(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	var macs []string
	for range 3 {
		m := ts.enroll(t)
		macs = append(macs, m.UDID)
	}
	if _, err := ts.admin.CreateGroup(t.Context(), "lab", "Lab"); err != nil {
		t.Fatal(err)
	}
	if err := ts.admin.AssignDevices(t.Context(), "lab", macs[:2]); err != nil {
		t.Fatal(err)
	}
	// Group membership shows in listings once the scheduler evaluated them.
	waitFor(t, func() bool {
		ts.app.sched.Touch(macs...)
		ts.app.sched.RunOnce(t.Context())
		l, err := ts.admin.DevicesFiltered(t.Context(), "", 10, api.DeviceFilter{Group: "lab"})
		return err == nil && len(l.Devices) == 2
	})
	env := map[string]string{"SUNDIAL_URL": ts.url, "SUNDIAL_API_KEY": ts.admin.APIKey}
	var out, errb bytes.Buffer
	cmdFile := filepath.Join(t.TempDir(), "cmd.plist")
	c, _ := mdm.NewCommand("ProfileList", nil)
	os.WriteFile(cmdFile, c.Raw, 0o600)
	code := run(t.Context(), []string{"commands", "enqueue", "--group", "lab", cmdFile, "--data-dir", ts.dir}, func(k string) string { return env[k] }, &out, &errb)
	if code != 0 || strings.Count(out.String(), "queued ProfileList") != 2 {
		t.Fatalf("bulk enqueue = %d %q %q", code, out.String(), errb.String())
	}
	for i, id := range macs {
		_, err := ts.app.store.Command(t.Context(), id, c.UUID)
		if (i < 2) != (err == nil) {
			t.Errorf("device %d: command present = %v", i, err == nil)
		}
	}
	// A list of devices: one bulk request.
	c2, _ := mdm.NewCommand("ProfileList", nil)
	os.WriteFile(cmdFile, c2.Raw, 0o600)
	out.Reset()
	code = run(t.Context(), []string{"commands", "enqueue", macs[0], macs[2], cmdFile, "-o", "json", "--data-dir", ts.dir}, func(k string) string { return env[k] }, &out, &errb)
	var res api.BulkEnqueueResult
	if err := json.Unmarshal(out.Bytes(), &res); code != 0 || err != nil || res.CommandUUID != c2.UUID || len(res.DeviceIDs) != 2 {
		t.Fatalf("enqueue for two devices = %d %q %q", code, out.String(), errb.String())
	}
	for i, id := range macs {
		_, err := ts.app.store.Command(t.Context(), id, c2.UUID)
		if (i != 1) != (err == nil) {
			t.Errorf("device %d: second command present = %v", i, err == nil)
		}
	}
	// An unknown device among them: nothing is queued, exit 3.
	c3, _ := mdm.NewCommand("ProfileList", nil)
	os.WriteFile(cmdFile, c3.Raw, 0o600)
	if code := run(t.Context(), []string{"commands", "enqueue", macs[0], "NOT-A-MAC", cmdFile, "--data-dir", ts.dir}, func(k string) string { return env[k] }, &out, &errb); code != exitNotFound {
		t.Errorf("enqueue with an unknown device = %d, want %d", code, exitNotFound)
	}
	if _, err := ts.app.store.Command(t.Context(), macs[0], c3.UUID); err == nil {
		t.Error("a refused bulk enqueue queued the command for a known device")
	}
}

func TestAdminInvalidInputSavesNothing(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	mac := ts.enroll(t)
	auditBefore, _ := ts.admin.Audit(t.Context(), 0, 1000)
	groupsBefore, _ := ts.admin.Groups(t.Context())
	tests := []struct {
		name string
		do   func() error
	}{
		{"group id with spaces", func() error { _, err := ts.admin.CreateGroup(t.Context(), "no spaces allowed", "x"); return err }},
		{"empty group id", func() error { _, err := ts.admin.CreateGroup(t.Context(), "", "x"); return err }},
		{"assign nobody", func() error { return ts.admin.AssignDevices(t.Context(), "default", nil) }},
		{"exception scope", func() error {
			return ts.admin.SetExceptionRaw(t.Context(), "planet", mac.UDID, `{"exempt":true}`)
		}},
		{"exception unknown field", func() error {
			return ts.admin.SetExceptionRaw(t.Context(), "device", mac.UDID, `{"exempt":true,"forever":true}`)
		}},
		{"exception already expired", func() error {
			return ts.admin.SetExceptionRaw(t.Context(), "device", mac.UDID, `{"exempt":true,"expires":"2001-01-01T00:00:00Z","reason":"x"}`)
		}},
		{"policy body not JSON", func() error { return ts.admin.PutRaw(t.Context(), "/api/v1/groups/default/policy", "mode=manual") }},
		{"audit limit", func() error { _, err := ts.admin.Audit(t.Context(), 0, 5000); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ae *api.Error
			if err := tc.do(); !errors.As(err, &ae) || ae.Code != api.CodeInvalid || ae.Message == "" {
				t.Errorf("err = %v, want invalid with a message", err)
			}
		})
	}
	auditAfter, _ := ts.admin.Audit(t.Context(), 0, 1000)
	groupsAfter, _ := ts.admin.Groups(t.Context())
	if len(auditAfter) != len(auditBefore) || len(groupsAfter) != len(groupsBefore) {
		t.Errorf("invalid input changed something: audit %d→%d, groups %d→%d", len(auditBefore), len(auditAfter), len(groupsBefore), len(groupsAfter))
	}
}
