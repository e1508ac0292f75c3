package main

import (
	"bytes"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/certs/certstest"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/mdmtest"
	"github.com/sundial-mdm/sundial/mdm/push/apnsmock"
	"github.com/sundial-mdm/sundial/softwareupdate"
)

// cliResult is one CLI run.
type cliResult struct {
	code        int
	out, stderr string
}

// cliFor runs the CLI in-process against ts with env as the environment.
func cliFor(t *testing.T, ts *testServer, env map[string]string) func(args ...string) cliResult {
	return func(args ...string) cliResult {
		t.Helper()
		var out, errb bytes.Buffer
		code := run(t.Context(), append(args, "--data-dir", ts.dir), func(k string) string { return env[k] }, &out, &errb)
		return cliResult{code, out.String(), errb.String()}
	}
}

func writeCommand(t *testing.T, body []byte) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "cmd.plist")
	if err := os.WriteFile(f, body, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func commandPlist(uuid, requestType string) []byte {
	return []byte(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict><key>CommandUUID</key><string>` + uuid + `</string>
<key>Command</key><dict><key>RequestType</key><string>` + requestType + `</string></dict></dict></plist>`)
}

// TestCLIExitCodesAndMessages checks each promise of the exit code table
// (0 ok, 1 failure, 2 usage or invalid input, 3 not found, 4 credentials)
// and that messages name the CLI's flags and are printed once.
func TestCLIExitCodesAndMessages(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	mac := ts.enroll(t, mdmtest.WithSerialNumber("C02PROMISE01"))
	if _, err := mac.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SUNDIAL_URL": ts.url, "SUNDIAL_API_KEY": ts.admin.APIKey}
	cli := cliFor(t, ts, env)
	good := writeCommand(t, commandPlist(mdm.NewUUID(), "ProfileList"))
	if r := cli("groups", "create", "empty"); r.code != 0 {
		t.Fatalf("groups create = %+v", r)
	}
	for _, tc := range []struct {
		args     []string
		want     int
		contains string // in standard error
	}{
		{[]string{"devices", "lst"}, exitUsage, "did you mean list"},
		{[]string{"devices", "show"}, exitUsage, "usage: sundial devices show DEVICE-ID"},
		{[]string{"devices", "show", "a", "b"}, exitUsage, "received 2"},
		{[]string{"groups", "assign", "pilots"}, exitUsage, "usage:"},
		{[]string{"devices", "list", "--phase", "bogus"}, exitUsage, "--phase \"bogus\": want one of pending"},
		{[]string{"devices", "list", "--group", "nosuchgroup"}, exitNotFound, `no group "nosuchgroup"`},
		{[]string{"commands", "enqueue", "--group", "nosuchgroup", good}, exitNotFound, `no group "nosuchgroup"`},
		{[]string{"devices", "push", "--group", "nosuchgroup"}, exitNotFound, `no group "nosuchgroup"`},
		{[]string{"commands", "enqueue", "--group", "empty", good}, exitOK, "group empty has no devices: nothing queued"},
		{[]string{"devices", "show", "NOSUCHSERIAL"}, exitNotFound, "not_found"},
		{[]string{"policy", "set", "empty", "--mode", "manual", "--version", "15.99.1", "--date", time.Now().AddDate(0, 0, 20).Format(time.DateOnly), "--time", "17:00", "--tz", "UTC"}, exitUsage, "--allow-unknown-version"},
		{[]string{"policy", "set", "empty", "--mode", "automatic", "--delay", "1w", "--time", "09:00", "--tz", "UTC", "--notice", "0"}, exitUsage, "--notice 0: give 1 to"},
		{[]string{"policy", "set", "empty", "--mode", "manual", "--version", "15.4", "--date", "15/12/2026", "--time", "17:00", "--tz", "UTC"}, exitUsage, "--date"},
		{[]string{"catalog", "add", "--version", "15.4.1", "--build", "24E263", "--posted", "2025-04-29"}, exitError, "conflict"},
	} {
		r := cli(tc.args...)
		if r.code != tc.want || !strings.Contains(r.stderr, tc.contains) {
			t.Errorf("%v = exit %d, stderr %q; want %d and %q", tc.args, r.code, r.stderr, tc.want, tc.contains)
		}
		if strings.Contains(r.stderr, "_") && r.code == exitUsage && strings.Contains(tc.args[0], "policy") {
			t.Errorf("%v names an API field: %q", tc.args, r.stderr)
		}
	}

	var out, errb bytes.Buffer
	if code := run(t.Context(), []string{"bogus"}, func(string) string { return "" }, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), `unknown command "bogus"`) {
		t.Errorf("sundial bogus = %d %q", code, errb.String())
	}

	// A serial number or a lower-case UDID finds the Mac.
	for _, id := range []string{"C02PROMISE01", "c02promise01", strings.ToLower(mac.UDID)} {
		if r := cli("devices", "show", id); r.code != 0 || !strings.Contains(r.out, mac.UDID) {
			t.Errorf("devices show %s = %+v", id, r)
		}
		if r := cli("commands", "list", id); r.code != 0 || !strings.Contains(r.out, "DeviceInformation") {
			t.Errorf("commands list %s = %+v", id, r)
		}
	}

	// What is enqueued is checked: a known RequestType (or --raw), a UUID,
	// at most 1 MiB. Nothing is queued when it fails.
	typo := commandPlist(mdm.NewUUID(), "ProfileLst")
	if r := cli("commands", "enqueue", mac.UDID, writeCommand(t, typo)); r.code != exitUsage || !strings.Contains(r.stderr, `unknown RequestType "ProfileLst"`) || !strings.Contains(r.stderr, "--raw") {
		t.Errorf("enqueue of an unknown RequestType = %+v", r)
	}
	if r := cli("commands", "enqueue", mac.UDID, writeCommand(t, commandPlist("cmd-1", "ProfileList"))); r.code != exitUsage || !strings.Contains(r.stderr, "not a UUID") {
		t.Errorf("enqueue with a non-UUID CommandUUID = %+v", r)
	}
	big := commandPlist(mdm.NewUUID(), "ProfileList")
	big = append(big, bytes.Repeat([]byte(" "), 1<<20)...)
	if r := cli("commands", "enqueue", mac.UDID, writeCommand(t, big)); r.code != exitUsage || !strings.Contains(r.stderr, "1 MiB") {
		t.Errorf("enqueue of a 1 MiB+ plist = %+v", r)
	}
	cmds, err := ts.admin.Commands(t.Context(), mac.UDID)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cmds {
		if c.RequestType != "DeviceInformation" && c.RequestType != "InstallProfile" {
			t.Errorf("a refused command was queued: %s %s", c.RequestType, c.UUID)
		}
	}
	if r := cli("commands", "enqueue", "--raw", strings.ToLower(mac.UDID), writeCommand(t, typo)); r.code != 0 || !strings.Contains(r.out, "ProfileLst") {
		t.Errorf("enqueue --raw = %+v", r)
	}
	// The server checks too, for API clients.
	if _, err := ts.admin.Enqueue(t.Context(), mac.UDID, commandPlist(mdm.NewUUID(), "Bogus")); err == nil {
		t.Error("API accepted an unknown RequestType without raw=true")
	}

	// Push failures fail, and the error is printed once.
	r := cli("devices", "push", mac.UDID)
	if r.code != exitError || strings.Count(r.stderr, "NoCertificate") != 1 || !strings.Contains(r.stderr, "pushcert set") {
		t.Errorf("devices push without a certificate = %+v", r)
	}

	// groups create twice does not rename.
	if r := cli("groups", "create", "pilots", "--name", "Pilot Macs"); r.code != 0 {
		t.Fatalf("groups create = %+v", r)
	}
	if r := cli("groups", "create", "pilots", "--name", "Other"); r.code != exitError || !strings.Contains(r.stderr, "already exists") {
		t.Errorf("second groups create = %+v", r)
	}
	if r := cli("groups", "list"); !strings.Contains(r.out, "Pilot Macs") || strings.Contains(r.out, "Other") {
		t.Errorf("groups list after a refused create = %q", r.out)
	}

	// audit shows BEFORE and AFTER.
	for _, delay := range []string{"1w", "2w"} {
		if r := cli("policy", "set", "pilots", "--mode", "automatic", "--delay", delay, "--time", "09:00", "--tz", "UTC"); r.code != 0 {
			t.Fatalf("policy set = %+v", r)
		}
	}
	if r := cli("audit"); r.code != 0 || !strings.Contains(r.out, "BEFORE") || !strings.Contains(r.out, `"delay_days":7`) || !strings.Contains(r.out, `"delay_days":14`) {
		t.Errorf("audit = %+v", r)
	}

	// Credentials: the message says where the key comes from.
	delete(env, "SUNDIAL_API_KEY")
	out.Reset()
	errb.Reset()
	if code := run(t.Context(), []string{"devices", "list", "--data-dir", t.TempDir()}, func(k string) string { return env[k] }, &out, &errb); code != exitAuth || !strings.Contains(errb.String(), "--data-dir") {
		t.Errorf("no key = %d %q", code, errb.String())
	}
	env["SUNDIAL_API_KEY"] = ts.admin.APIKey
	// A server whose CA the CLI does not have: say how to give it.
	out.Reset()
	errb.Reset()
	if code := run(t.Context(), []string{"devices", "list", "--data-dir", t.TempDir()}, func(k string) string { return env[k] }, &out, &errb); code != exitError ||
		!strings.Contains(errb.String(), "cannot verify the server's TLS certificate") || !strings.Contains(errb.String(), "--ca-file") {
		t.Errorf("unknown CA = %d %q", code, errb.String())
	}
	// A server that is not there: a failure (1) that says where it tried.
	env["SUNDIAL_URL"] = "https://" + freeAddr(t)
	if r := cli("devices", "list"); r.code != exitError || !strings.Contains(r.stderr, "cannot reach Sundial at") {
		t.Errorf("unreachable server = %+v", r)
	}
	env["SUNDIAL_URL"] = ts.url

	// Revoking the key the CLI uses needs --force.
	keys, err := ts.admin.APIKeys(t.Context())
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys = %v, %v", keys, err)
	}
	// The last admin key is never revoked (security branch): a second
	// admin key makes the CLI's own key revocable.
	if r := cli("apikeys", "revoke", "--force", keys[0].ID); r.code != exitError || !strings.Contains(r.stderr, "last admin API key") {
		t.Errorf("revoking the last admin key = %+v", r)
	}
	if _, err := ts.admin.CreateAPIKey(t.Context(), "second admin"); err != nil {
		t.Fatal(err)
	}
	if r := cli("apikeys", "revoke", keys[0].ID); r.code != exitError || !strings.Contains(r.stderr, "--force") {
		t.Errorf("revoking the CLI's own key = %+v", r)
	}
	if r := cli("apikeys", "list"); r.code != 0 || !strings.Contains(r.out, keys[0].ID+"  ") || strings.Count(r.out, "-\n") != 2 {
		t.Errorf("the key was revoked anyway: %+v", r)
	}
	if r := cli("apikeys", "revoke", "--force", keys[0].ID); r.code != 0 {
		t.Errorf("apikeys revoke --force = %+v", r)
	}
	if r := cli("devices", "list"); r.code != exitAuth {
		t.Errorf("after revoking its own key = %+v", r)
	}
}

// TestPolicyDeadlineAcrossDST sets manual deadlines on wall times that do
// not exist or happen twice in New York: each is accepted with a warning
// that names the instant chosen, shown in the policy zone and UTC.
func TestPolicyDeadlineAcrossDST(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	cli := cliFor(t, ts, map[string]string{"SUNDIAL_URL": ts.url, "SUNDIAL_API_KEY": ts.admin.APIKey})
	if r := cli("groups", "create", "ny"); r.code != 0 {
		t.Fatal(r)
	}
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip(err)
	}
	find := func(hour int, want softwareupdate.WallTimeKind) string {
		for d := time.Now().AddDate(0, 0, 10); d.Before(time.Now().AddDate(1, 2, 0)); d = d.AddDate(0, 0, 1) {
			y, m, day := d.In(ny).Date()
			if _, k := softwareupdate.ResolveWallTime(y, m, day, hour, 30, ny); k == want {
				return time.Date(y, m, day, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
			}
		}
		t.Fatalf("no DST transition of kind %v within a year", want)
		return ""
	}
	for _, tc := range []struct {
		date, time, note string
	}{
		{find(2, softwareupdate.WallTimeSkipped), "02:30", "does not exist"},
		{find(1, softwareupdate.WallTimeRepeated), "01:30", "happens twice"},
	} {
		r := cli("policy", "set", "ny", "--mode", "manual", "--version", "15.99.1", "--allow-unknown-version",
			"--date", tc.date, "--time", tc.time, "--tz", "America/New_York")
		if r.code != 0 || !strings.Contains(r.stderr, "warning: "+tc.date+" "+tc.time+" in America/New_York "+tc.note) || !strings.Contains(r.stderr, "UTC") {
			t.Errorf("policy set on %s %s = %+v", tc.date, tc.time, r)
		}
		if r := cli("policy", "show", "ny"); r.code != 0 || !strings.Contains(r.out, "(America/New_York, policy) = ") || !strings.Contains(r.out, tc.note) {
			t.Errorf("policy show = %+v", r)
		}
	}
	if r := cli("policy", "set", "ny", "--mode", "manual", "--version", "15.99.1", "--allow-unknown-version",
		"--date", time.Now().AddDate(0, 1, 0).Format(time.DateOnly), "--time", "12:00", "--tz", "America/New_York"); r.code != 0 || strings.Contains(r.stderr, "warning") {
		t.Errorf("an ordinary wall time warned: %+v", r)
	}
}

// TestPushTopicMismatchExplained enrolls a Mac before the push certificate
// is set: pushcert set warns that it must re-enroll, and pushing it fails
// with that hint.
func TestPushTopicMismatchExplained(t *testing.T) {
	mock := apnsmock.New()
	ms := apnsmock.NewTestServer(mock, nil)
	t.Cleanup(ms.Close)
	dir := t.TempDir()
	caFile := filepath.Join(t.TempDir(), "apns-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ms.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	ts := startTestServerWith(t, dir, func(c *Config) { c.APNsURL, c.APNsCA = ms.URL, caFile })
	early := ts.enroll(t)
	now := time.Now()
	certPEM, keyPEM := certstest.NewPushCert(testTopic, now.Add(-time.Hour), now.Add(300*24*time.Hour))
	certFile, keyFile := filepath.Join(t.TempDir(), "push.pem"), filepath.Join(t.TempDir(), "push.key")
	os.WriteFile(certFile, certPEM, 0o600)
	os.WriteFile(keyFile, keyPEM, 0o600)
	cli := cliFor(t, ts, map[string]string{"SUNDIAL_URL": ts.url, "SUNDIAL_API_KEY": ts.admin.APIKey})
	r := cli("pushcert", "set", "--cert", certFile, "--key", keyFile)
	if r.code != 0 || !strings.Contains(r.stderr, "1 enrolled Mac uses the push topic of an earlier certificate") || !strings.Contains(r.stderr, "re-enroll") {
		t.Errorf("pushcert set = %+v", r)
	}
	late := ts.enroll(t)
	if r := cli("devices", "push", late.UDID); r.code != 0 || !strings.Contains(r.out, "ok") {
		t.Errorf("push to a Mac enrolled after the certificate = %+v", r)
	}
	r = cli("devices", "push", early.UDID, late.UDID)
	if r.code != exitError || !strings.Contains(r.stderr, "TopicMismatch") || !strings.Contains(r.stderr, "must re-enroll") || !strings.Contains(r.stderr, "1 of 2 devices failed") {
		t.Errorf("push to a Mac enrolled before the certificate = %+v", r)
	}
}

func TestZonesLine(t *testing.T) {
	at := time.Date(2026, 12, 15, 16, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		policy, mac, want string
	}{
		{"Europe/Berlin", "America/New_York", "2026-12-15 17:00 CET (Europe/Berlin, policy) = 2026-12-15 11:00 EST (America/New_York, Mac) = 2026-12-15 16:00 UTC"},
		{"Europe/Berlin", "Europe/Berlin", "2026-12-15 17:00 CET (Europe/Berlin, policy) = 2026-12-15 16:00 UTC"},
		{"device-local", "Asia/Tokyo", "2026-12-16 01:00 JST (Asia/Tokyo, Mac) = 2026-12-15 16:00 UTC"},
		{"", "", "2026-12-15 16:00 UTC"},
	} {
		if have := zonesLine(at, tc.policy, tc.mac); have != tc.want {
			t.Errorf("zonesLine(%q, %q) = %q, want %q", tc.policy, tc.mac, have, tc.want)
		}
	}
}
