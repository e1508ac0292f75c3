package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/sundial-mdm/sundial/softwareupdate"
)

// browser starts a headless Chromium (Debian's chromium package). Without
// one the test is skipped, except in CI, where .ci/run installs it.
func browser(t *testing.T) context.Context {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is not installed (.ci/run installs Debian's chromium package)")
		}
		t.Skip("chromium is not installed: apt-get install chromium")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		// The test server's certificate is issued by its own fresh CA.
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.WindowSize(1280, 1000))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(cancel3)
	return ctx
}

// shot saves a full-page PNG screenshot in the test's artifact folder.
func shot(t *testing.T, name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		buf, err := chromedp.FullScreenshot(100)(ctx, tg)
		if err != nil {
			return err
		}
		p := filepath.Join(t.ArtifactDir(), name+".png")
		t.Logf("screenshot %s", p)
		return os.WriteFile(p, buf, 0o644)
	})
}

func browse(t *testing.T, ctx context.Context, step string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", step, err)
	}
}

// into runs a and stores its value in dst, so that a step that reads the
// page sits in one list with the steps that drive it.
func into[T any](dst *T, a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		v, err := a(ctx, tg)
		*dst = v
		return chromedp.Void{}, err
	}
}

// cookiesInto reads the browser's cookies for the current page into dst.
func cookiesInto(dst *[]*network.Cookie) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		res, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{})
		*dst = res.Cookies
		return err
	})
}

func signInActions(base, key string) []chromedp.Action[chromedp.Void] {
	return []chromedp.Action[chromedp.Void]{
		chromedp.Navigate(base + "/ui/"),
		chromedp.WaitVisible(chromedp.CSS("#key")),
		chromedp.SendKeys(chromedp.CSS("#key"), key),
		chromedp.SetValue(chromedp.CSS("#zone"), "America/New_York"),
		chromedp.Click(chromedp.CSS(`#signin button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS("#stat-devices")),
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return n
}

func TestConsoleInBrowser(t *testing.T) {
	// The server first, so that its cleanup runs after the browser's: a
	// browser still connected would hold the server's graceful shutdown.
	f := newConsoleFleet(t)
	ctx := browser(t)
	ts := f.ts
	base := ts.url

	// Sign in and read the overview; its numbers are the API's.
	browse(t, ctx, "sign in", signInActions(base, f.adminKey)...)
	browse(t, ctx, "overview screenshot", shot(t, "overview"))
	var devices, managed, compliant, past, who string
	browse(t, ctx, "read overview",
		into(&devices, chromedp.Text(chromedp.CSS("#stat-devices"))),
		into(&managed, chromedp.Text(chromedp.CSS("#stat-managed"))),
		into(&compliant, chromedp.Text(chromedp.CSS("#stat-compliant"))),
		into(&past, chromedp.Text(chromedp.CSS("#stat-past"))),
		into(&who, chromedp.Text(chromedp.CSS("#whoami"))))
	rep, err := ts.admin.ComplianceReport(t.Context(), false)
	if err != nil {
		t.Fatal(err)
	}
	if atoi(t, devices) != rep.Devices || atoi(t, managed) != rep.Managed || atoi(t, compliant) != rep.Compliant || atoi(t, past) != len(rep.PastDeadline) {
		t.Fatalf("overview shows %s Macs, %s managed, %s compliant, %s past deadline; the API: %d, %d, %d, %d",
			devices, managed, compliant, past, rep.Devices, rep.Managed, rep.Compliant, len(rep.PastDeadline))
	}
	if !strings.Contains(who, "initial admin") || !strings.Contains(who, "America/New_York") {
		t.Fatalf("signed in as %q", who)
	}
	for phase, n := range rep.ByPhase {
		var cell string
		browse(t, ctx, "funnel "+string(phase), into(&cell, chromedp.Text(chromedp.CSS(fmt.Sprintf(`#funnel tr[data-phase="%s"] td.num`, phase)))))
		if atoi(t, cell) != n {
			t.Errorf("funnel %s = %s, API %d", phase, cell, n)
		}
	}

	// The device list, filtered, then a device.
	browse(t, ctx, "devices",
		chromedp.Navigate(base+"/ui/devices"),
		chromedp.WaitVisible(chromedp.CSS("#devices")),
		chromedp.SetValue(chromedp.CSS("#search"), "console01"),
		chromedp.Click(chromedp.CSS(`.filters button[type=submit]`)),
		// Only the filtered page renders the value as an attribute (the
		// old page's rows would otherwise satisfy the wait mid-navigation).
		chromedp.WaitVisible(chromedp.CSS(`#search[value="console01"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#devices tbody a`)),
		shot(t, "devices"),
		chromedp.Click(chromedp.CSS(`#devices tbody a`)),
		chromedp.WaitVisible(chromedp.CSS("#facts")))
	var phase, deadlineAdmin, deadlineMac string
	browse(t, ctx, "device", shot(t, "device"),
		into(&phase, chromedp.Text(chromedp.CSS("#phase"))),
		into(&deadlineAdmin, chromedp.Text(chromedp.CSS("#deadline-admin"))),
		into(&deadlineMac, chromedp.Text(chromedp.CSS("#deadline-mac"))))
	upd, err := ts.admin.DeviceUpdate(t.Context(), f.macs[0].UDID, 0)
	if err != nil {
		t.Fatal(err)
	}
	ny, _ := time.LoadLocation("America/New_York")
	if phase != string(upd.State.Phase) || deadlineAdmin != upd.State.Deadline.In(ny).Format("2006-01-02 15:04 MST") ||
		deadlineMac != upd.State.Deadline.UTC().Format("2006-01-02 15:04 MST") {
		t.Fatalf("device page: phase %q, deadline %q / %q; API: %s %s", phase, deadlineAdmin, deadlineMac, upd.State.Phase, upd.State.Deadline)
	}

	// A policy edited through the what-if: a past date is refused with the
	// API's message, a good one previewed with the API's numbers, then saved.
	pastDate := time.Now().UTC().AddDate(0, 0, -2).Format(time.DateOnly)
	bad := softwareupdate.Policy{Mode: softwareupdate.ModeManual, MinimumVersion: "14.6.1", Date: pastDate, TimeOfDay: "09:00", TimeZone: "UTC", RingOffsetDays: 2}
	_, apiErr := ts.admin.PolicyWhatIf(t.Context(), "pilot", bad)
	if apiErr == nil {
		t.Fatal("the API accepted a deadline in the past")
	}
	var msg string
	browse(t, ctx, "invalid policy",
		chromedp.Navigate(base+"/ui/policies/pilot"),
		chromedp.WaitVisible(chromedp.CSS("#policy-form")),
		chromedp.SetValue(chromedp.CSS("#date"), pastDate),
		chromedp.SetValue(chromedp.CSS("#time_of_day"), "09:00"),
		chromedp.SetValue(chromedp.CSS("#ring_offset_days"), "2"),
		chromedp.SetValue(chromedp.CSS("#minimum_notice_days"), ""),
		chromedp.Click(chromedp.CSS("#preview")),
		chromedp.WaitVisible(chromedp.CSS("#error")),
		into(&msg, chromedp.Text(chromedp.CSS("#error"))))
	if !strings.Contains(apiErr.Error(), msg) {
		t.Fatalf("console says %q, the API %q", msg, apiErr)
	}
	good := bad
	good.Date = time.Now().UTC().AddDate(0, 0, 1).Format(time.DateOnly)
	want, err := ts.admin.PolicyWhatIf(t.Context(), "pilot", good)
	if err != nil {
		t.Fatal(err)
	}
	var forced string
	browse(t, ctx, "preview policy",
		chromedp.SetValue(chromedp.CSS("#date"), good.Date),
		chromedp.Click(chromedp.CSS("#preview")),
		chromedp.WaitVisible(chromedp.CSS("#whatif")),
		into(&forced, chromedp.Text(chromedp.CSS("#whatif-forced"))),
		shot(t, "policy-whatif"))
	if atoi(t, forced) != want.ForcedWithin24h {
		t.Fatalf("what-if shows %s forced, the API %d", forced, want.ForcedWithin24h)
	}
	for phase, n := range want.Tomorrow {
		var cell string
		browse(t, ctx, "what-if "+string(phase), into(&cell, chromedp.Text(chromedp.CSS(fmt.Sprintf(`#whatif tr[data-phase="%s"] td.tomorrow`, phase)))))
		if atoi(t, cell) != n {
			t.Errorf("what-if: %s in 24 h = %s, API %d", phase, cell, n)
		}
	}
	browse(t, ctx, "save policy",
		chromedp.Click(chromedp.CSS("#save")),
		chromedp.WaitVisible(chromedp.CSS("#flash")))
	rec, err := ts.admin.Policy(t.Context(), "pilot")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Policy != good || rec.UpdatedBy != "initial admin" {
		t.Fatalf("saved policy = %+v by %s, want %+v", rec.Policy, rec.UpdatedBy, good)
	}

	// An exception granted from the device page, behind a confirmation.
	var exc string
	browse(t, ctx, "grant exception",
		chromedp.Navigate(base+"/ui/devices/"+url.PathEscape(f.macs[1].UDID)),
		chromedp.WaitVisible(chromedp.CSS("#grant-exception")),
		chromedp.Click(chromedp.CSS("#grant-exception")),
		chromedp.WaitVisible(chromedp.CSS("#confirm")),
		chromedp.SendKeys(chromedp.CSS("#reason"), "travelling until the 20th"),
		shot(t, "confirm-exception"),
		chromedp.Click(chromedp.CSS("#confirm-button")),
		chromedp.WaitVisible(chromedp.CSS("#exception")),
		into(&exc, chromedp.Text(chromedp.CSS("#exception"))))
	if !strings.Contains(exc, "travelling until the 20th") {
		t.Fatalf("exception shown as %q", exc)
	}

	// Both changes are in the audit log, by the signed-in key.
	var audit string
	browse(t, ctx, "audit",
		chromedp.Navigate(base+"/ui/audit"),
		chromedp.WaitVisible(chromedp.CSS("#audit")),
		into(&audit, chromedp.Text(chromedp.CSS("#audit tbody"))),
		shot(t, "audit"))
	for _, w := range []string{"policy.set", "exception.set", "device/" + f.macs[1].UDID, "initial admin"} {
		if !strings.Contains(audit, w) {
			t.Errorf("audit log lacks %q:\n%s", w, audit)
		}
	}
	for _, p := range []string{"exceptions", "catalog", "policies"} {
		browse(t, ctx, p, chromedp.Navigate(base+"/ui/"+p), chromedp.WaitVisible(chromedp.CSS("main h1")), shot(t, p))
	}

	// Sign out, then in with the read key: no edit controls, and a POST
	// forged with its session and CSRF token gets 403.
	browse(t, ctx, "sign out", chromedp.Click(chromedp.CSS(".who button")), chromedp.WaitVisible(chromedp.CSS("#key")))
	browse(t, ctx, "read sign in", signInActions(base, f.readKey)...)
	var policyHTML, deviceHTML, csrf string
	browse(t, ctx, "read pages",
		chromedp.Navigate(base+"/ui/policies/pilot"),
		chromedp.WaitVisible(chromedp.CSS("#policy-view")),
		into(&policyHTML, chromedp.OuterHTML(chromedp.CSS("main"))),
		shot(t, "policy-read-only"),
		chromedp.Navigate(base+"/ui/devices/"+url.PathEscape(f.macs[0].UDID)),
		chromedp.WaitVisible(chromedp.CSS("#facts")),
		into(&deviceHTML, chromedp.OuterHTML(chromedp.CSS("main"))),
		into(&csrf, chromedp.Value(chromedp.CSS(`.who input[name=csrf]`))))
	if strings.Contains(policyHTML, "policy-form") || strings.Contains(deviceHTML, `id="actions"`) {
		t.Fatal("the read key sees edit controls")
	}
	var cookies []*network.Cookie
	browse(t, ctx, "cookies", cookiesInto(&cookies))
	form := url.Values{"csrf": {csrf}, "mode": {"unmanaged"}}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/ui/policies/pilot", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	resp, err := ts.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("forged POST with the read key's session: %s", resp.Status)
	}
	if after, err := ts.admin.Policy(t.Context(), "pilot"); err != nil || after.Revision != rec.Revision {
		t.Fatalf("policy changed by a refused POST: %+v %v", after, err)
	}

	// The dark theme follows the system's preference.
	var light, dark string
	bg := `getComputedStyle(document.body).backgroundColor`
	browse(t, ctx, "themes",
		chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible(chromedp.CSS("#stat-devices")),
		into(&light, chromedp.Evaluate[string](bg)),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}})
			return err
		}),
		into(&dark, chromedp.Evaluate[string](bg)),
		shot(t, "overview-dark"))
	if light == dark || light == "" {
		t.Fatalf("background light %q, dark %q", light, dark)
	}
}
