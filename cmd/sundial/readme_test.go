package main

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/api"
	"github.com/sundial-mdm/sundial/certs/certstest"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/push/apnsmock"
)

// readmeCommands returns the sundial command lines of the README's Admin
// CLI block, without their trailing comments.
func readmeCommands(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "\n## Admin CLI\n")
	if !ok {
		t.Fatal("README.md has no Admin CLI section")
	}
	_, block, _ := strings.Cut(section, "```sh\n")
	block, _, _ = strings.Cut(block, "```")
	var lines []string
	for _, l := range strings.Split(block, "\n") {
		if i := strings.Index(l, "  #"); i >= 0 {
			l = l[:i]
		}
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// splitArgs splits a README command line like a shell: spaces separate
// arguments, double quotes group them.
func splitArgs(line string) []string {
	var args []string
	var cur strings.Builder
	quoted, inArg := false, false
	for _, r := range line {
		switch {
		case r == '"':
			quoted, inArg = !quoted, true
		case r == ' ' && !quoted:
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteRune(r)
			inArg = true
		}
	}
	if inArg {
		args = append(args, cur.String())
	}
	return args
}

// TestREADMEWalk runs every command of the README's Admin CLI block, in
// order, against a live server with one Mac, and checks its exit code and
// output, so the README cannot promise what the CLI does not do. A command
// added to the README without an expectation here fails the test.
func TestREADMEWalk(t *testing.T) {
	mock := apnsmock.New()
	ms := apnsmock.NewTestServer(mock, nil)
	t.Cleanup(ms.Close)
	work := t.TempDir()
	caFile := filepath.Join(work, "apns-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ms.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	feed := feedWithExtraRelease(t)
	feeds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(feed) }))
	t.Cleanup(feeds.Close)
	ts := startTestServerWith(t, t.TempDir(), func(c *Config) { c.APNsURL, c.APNsCA = ms.URL, caFile })

	// The server already has a push certificate; the README's pushcert set
	// renews it with the same topic, so the Mac stays reachable.
	now := time.Now()
	certPEM, keyPEM := certstest.NewPushCert(testTopic, now.Add(-time.Hour), now.Add(300*24*time.Hour))
	if _, err := ts.admin.SetPushCert(t.Context(), api.PushCertRequest{CertPEM: string(certPEM), KeyPEM: string(keyPEM)}); err != nil {
		t.Fatal(err)
	}
	mac := ts.enroll(t)
	if _, err := mac.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM = certstest.NewPushCert(testTopic, now.Add(-time.Hour), now.Add(365*24*time.Hour))
	cmd, _ := mdm.NewCommand("ProfileList", nil)
	info, _ := mdm.NewCommand("DeviceInformation", map[string]any{"Queries": []string{"OSVersion"}})
	for name, body := range map[string][]byte{"push.pem": certPEM, "push.key": keyPEM, "cmd.plist": cmd.Raw, "info.plist": info.Raw} {
		if err := os.WriteFile(filepath.Join(work, name), body, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	deadline := now.AddDate(0, 0, 20).Format(time.DateOnly)
	file := regexp.MustCompile(`^[\w-]+\.(db|plist|pem|key)$`)
	subst := map[string]string{
		"<UDID>": mac.UDID, "<UDID>...": mac.UDID,
		"https://gdmf.apple.com/v2/pmv": feeds.URL + "/v2/pmv",
		"OLD":                           filepath.Join(work, "sundial-backup.db"),
		"NEW":                           filepath.Join(work, "compacted.db"),
	}

	// What each README command must print (standard output), by its
	// leading words; every one must exit 0.
	want := map[string][]string{
		"devices list":           {mac.UDID, mac.OSVersion()},
		"devices show":           {"device:    " + mac.UDID, "phase:"},
		"groups create":          {"group pilots created"},
		"groups assign":          {"1 device assigned to pilots"},
		"policy set":             {"set (revision 1)"},
		"policy show":            {"macOS 15.4 by " + deadline + " 17:00 Europe/Berlin", "(Europe/Berlin, policy) = "},
		"catalog list":           {"VERSION", "15.4"},
		"catalog sync":           {"gdmf feed", "1 new"},
		"catalog add":            {"added macOS 26.6.3"},
		"audit":                  {"BEFORE", "AFTER", "pilots", "default"},
		"commands enqueue":       {"queued ProfileList " + cmd.UUID + " for " + mac.UDID},
		"commands list":          {cmd.UUID, "ProfileList"},
		"pushcert set":           {"topic:      " + testTopic},
		"devices push":           {mac.UDID + "\tok"},
		"apikeys create":         {"name:   ci", "secret: sdl_"},
		"webhooks add":           {"id:     ops", "secret: whsec_"},
		"backup":                 {"wrote " + filepath.Join(work, "sundial-backup.db")},
		"storage compact":        {"buckets", "KB pages"},
		"storage check":          {"sundial-backup.db: ", "ok\n"},
		"devices retry":          {mac.UDID, "nothing to retry"},
		"catalog remove":         {"removed macOS 26.6.3"},
		"catalog status":         {"age:", "gdmf", feeds.URL},
		"exceptions grant":       {" until "},
		"exceptions list":        {"travelling", "freeze", "pilots"},
		"devices enrollment":     {"device:       " + mac.UDID, "bound"},
		"devices allow-reenroll": {mac.UDID + " may re-enroll"},
		"pause":                  {"paused group pilots: 15.4 boot loops"},
		"resume":                 {"resumed group pilots"},
		"readiness":              {"Deadlines until", "FORECAST"},
		"rings set":              {"ring plan macos: pilots → default", "max wait 5d"},
		"rings show":             {"PLAN", "macos", "pilots", "default"},
		"rings promote":          {"promoted ring default of plan macos"},
		"report evidence":        {"summary,from,to", "day,group,plan,ring"},
	}
	// Commands the README shows twice with different arguments.
	byLine := map[string][]string{
		"sundial commands enqueue --group pilots info.plist": {"queued DeviceInformation " + info.UUID + " for " + mac.UDID},
		"sundial apikeys create viewer --role read":          {"name:   viewer", "secret: sdl_"},
	}
	env := map[string]string{"SUNDIAL_URL": ts.url, "SUNDIAL_API_KEY": ts.admin.APIKey}
	cli := cliFor(t, ts, env)
	lines := readmeCommands(t)
	if len(lines) < len(want) {
		t.Fatalf("README Admin CLI block has %d commands, want at least %d", len(lines), len(want))
	}
	seen := map[string]bool{}
	for _, line := range lines {
		args := splitArgs(line)
		if args[0] != "sundial" {
			t.Errorf("README line %q does not start with sundial", line)
			continue
		}
		args = args[1:]
		for i, a := range args {
			switch {
			case subst[a] != "":
				args[i] = subst[a]
			case file.MatchString(a):
				args[i] = filepath.Join(work, a)
			case i > 0 && args[i-1] == "--date":
				args[i] = deadline // README's date would pass by
			}
		}
		key := args[0]
		if len(args) > 1 && !strings.HasPrefix(args[1], "-") {
			key += " " + args[1]
		}
		exp, ok := byLine[line]
		if !ok {
			exp, ok = want[key]
		}
		if !ok {
			t.Errorf("README command %q has no expectation in TestREADMEWalk", line)
			continue
		}
		seen[key] = true
		if args[0] == "storage" {
			// An offline command: it takes no server flags.
			r := runArgs(t, args)
			checkWalk(t, line, r, exp)
			continue
		}
		checkWalk(t, line, cli(args...), exp)
	}
	for k := range want {
		if !seen[k] {
			t.Errorf("TestREADMEWalk expects %q, which the README no longer shows", k)
		}
	}
}

func runArgs(t *testing.T, args []string) cliResult {
	t.Helper()
	var out, errb strings.Builder
	code := run(t.Context(), args, func(string) string { return "" }, &out, &errb)
	return cliResult{code, out.String(), errb.String()}
}

func checkWalk(t *testing.T, line string, r cliResult, want []string) {
	t.Helper()
	if r.code != 0 {
		t.Errorf("%s: exit %d, stderr %q", line, r.code, r.stderr)
		return
	}
	for _, w := range want {
		if !strings.Contains(r.out, w) {
			t.Errorf("%s: output lacks %q:\n%s", line, w, r.out)
		}
	}
}
