package main

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/api"
	"github.com/sundial-mdm/sundial/mdm/mdmtest"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// consoleFleet is a live server with a small fleet for console tests: Macs
// in a "pilot" group under a manual policy (some notified), the rest in the
// default group, and a read-only API key.
type consoleFleet struct {
	ts       *testServer
	adminKey string
	readKey  string
	macs     []*mdmtest.Device
	target   catalog.Release
}

func newConsoleFleet(t *testing.T) *consoleFleet {
	t.Helper()
	ts := startTestServerWith(t, t.TempDir(), func(c *Config) { c.ConsoleReadKeys = []string{"auditor"} })
	ctx := t.Context()
	cat := catalog.Default()
	target, ok := cat.Lookup(catalog.MustParseVersion("14.6.1"))
	if !ok {
		t.Fatal("the embedded catalog lacks macOS 14.6.1")
	}
	hw := hardwareFor(t, target)
	f := &consoleFleet{ts: ts, adminKey: ts.admin.APIKey, target: target}
	serials := []string{"C02CONSOLE01", "C02CONSOLE02", "C02CONSOLE03", "C02CONSOLE04"}
	for i, serial := range serials {
		osv, build := "14.6", "23G80"
		if i == 3 {
			osv, build = "14.6.1", "23G93"
		}
		mac := ts.enroll(t, mdmtest.WithHardware(hw), mdmtest.WithOS(osv, build), mdmtest.WithSerialNumber(serial))
		f.macs = append(f.macs, mac)
	}
	m := ts.app.manager
	if _, err := m.CreateGroup(ctx, "e2e-test", "pilot", "Pilot Macs"); err != nil {
		t.Fatal(err)
	}
	if err := m.AssignDevices(ctx, "e2e-test", "pilot", []string{f.macs[0].UDID, f.macs[1].UDID, f.macs[3].UDID}); err != nil {
		t.Fatal(err)
	}
	date, _ := policyDate(time.UTC, 3)
	if _, err := m.SetPolicy(ctx, "e2e-test", "pilot", softwareupdate.Policy{Mode: softwareupdate.ModeManual,
		MinimumVersion: "14.6.1", Date: date, TimeOfDay: "12:00", TimeZone: "UTC", MinimumNoticeDays: 1}); err != nil {
		t.Fatal(err)
	}
	schedState(t, ts, f.macs[0].UDID, func(st *scheduler.State) bool { return st.Phase == softwareupdate.PhaseNotify })
	schedState(t, ts, f.macs[3].UDID, func(st *scheduler.State) bool { return st.Phase == softwareupdate.PhaseCompliant })
	k, err := ts.admin.CreateAPIKey(ctx, "auditor")
	if err != nil {
		t.Fatal(err)
	}
	f.readKey = k.Secret
	// Let the server's own passes settle, so that the console and the API
	// are read at the same state.
	for range 3 {
		if _, err := ts.app.sched.RunOnce(ctx); err != nil && !errors.Is(err, scheduler.ErrConflict) {
			t.Fatal(err)
		}
	}
	return f
}

// consoleUser is a browser stand-in: its own cookies, no redirects followed.
type consoleUser struct {
	t       *testing.T
	base    string
	hc      *http.Client
	cookies map[string]*http.Cookie
}

func (f *consoleFleet) user(t *testing.T) *consoleUser {
	hc := *f.ts.hc
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &consoleUser{t: t, base: f.ts.url, hc: &hc, cookies: map[string]*http.Cookie{}}
}

func (u *consoleUser) do(method, path string, form url.Values) (*http.Response, string) {
	u.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(u.t.Context(), method, u.base+path, body)
	if err != nil {
		u.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, c := range u.cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	resp, err := u.hc.Do(req)
	if err != nil {
		u.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 {
			delete(u.cookies, c.Name)
		} else {
			u.cookies[c.Name] = c
		}
	}
	return resp, string(data)
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfRe.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in page:\n%s", page)
	}
	return m[1]
}

// signIn signs in with key and returns the session's CSRF token.
func (u *consoleUser) signIn(key string) string {
	u.t.Helper()
	_, page := u.do(http.MethodGet, "/ui/signin", nil)
	resp, _ := u.do(http.MethodPost, "/ui/signin", url.Values{"csrf": {csrfOf(u.t, page)}, "key": {key}, "zone": {"Europe/Berlin"}, "next": {"/ui/"}})
	if resp.StatusCode != http.StatusSeeOther {
		u.t.Fatalf("sign-in: %s", resp.Status)
	}
	resp, page = u.do(http.MethodGet, "/ui/", nil)
	if resp.StatusCode != http.StatusOK {
		u.t.Fatalf("overview after sign-in: %s", resp.Status)
	}
	return csrfOf(u.t, page)
}

func TestConsoleSignInSessionsAndCSRF(t *testing.T) {
	f := newConsoleFleet(t)
	ctx := t.Context()
	u := f.user(t)

	// Without a session every page sends the browser to sign in.
	resp, _ := u.do(http.MethodGet, "/ui/devices?phase=notify", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/signin?next=%2Fui%2Fdevices%3Fphase%3Dnotify" {
		t.Fatalf("signed out: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	resp, page := u.do(http.MethodGet, "/ui/signin", nil)
	csp := resp.Header.Get("Content-Security-Policy")
	if resp.StatusCode != 200 || csp == "" || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "default-src 'none'") {
		t.Fatalf("sign-in page: %s, CSP %q", resp.Status, csp)
	}
	csrf := csrfOf(t, page)

	// Sign-in needs the pre-session CSRF cookie and a valid key; a bad key
	// changes nothing.
	bare := f.user(t)
	if resp, _ := bare.do(http.MethodPost, "/ui/signin", url.Values{"csrf": {csrf}, "key": {f.adminKey}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-in without the CSRF cookie: %s", resp.Status)
	}
	if resp, page := u.do(http.MethodPost, "/ui/signin", url.Values{"csrf": {csrf}, "key": {"sdl_wrong"}}); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "unknown or revoked") {
		t.Fatalf("wrong key: %s", resp.Status)
	}
	if resp, page := u.do(http.MethodPost, "/ui/signin", url.Values{"csrf": {csrf}, "key": {f.adminKey}, "zone": {"Mars/Olympus"}}); resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "Unknown time zone") {
		t.Fatalf("bad zone: %s", resp.Status)
	}
	if len(u.cookies) != 1 {
		t.Fatalf("cookies after refused sign-ins: %v", u.cookies)
	}
	// A foreign redirect target is ignored.
	resp, _ = u.do(http.MethodPost, "/ui/signin", url.Values{"csrf": {csrf}, "key": {f.adminKey}, "next": {"//evil.example/ui/"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/" {
		t.Fatalf("sign-in: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	ck := u.cookies["sundial_session"]
	if ck == nil || !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteStrictMode || ck.MaxAge <= 0 || ck.Path != "/ui/" {
		t.Fatalf("session cookie = %+v", ck)
	}
	resp, page = u.do(http.MethodGet, "/ui/", nil)
	if resp.StatusCode != 200 || !strings.Contains(page, `id="stat-devices">4<`) {
		t.Fatalf("overview: %s\n%s", resp.Status, page)
	}
	csrf = csrfOf(t, page)

	// A post without the session's CSRF token is refused and changes nothing.
	before, err := f.ts.admin.Policy(ctx, "pilot")
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"mode": {"unmanaged"}}
	if resp, _ := u.do(http.MethodPost, "/ui/policies/pilot", form); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("post without CSRF: %s", resp.Status)
	}
	form.Set("csrf", "forged")
	if resp, _ := u.do(http.MethodPost, "/ui/policies/pilot", form); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("post with a wrong CSRF token: %s", resp.Status)
	}

	// A read key sees no edit controls, and its posts get 403 even with
	// its own valid CSRF token.
	r := f.user(t)
	rcsrf := r.signIn(f.readKey)
	_, page = r.do(http.MethodGet, "/ui/policies/pilot", nil)
	if strings.Contains(page, `id="policy-form"`) || !strings.Contains(page, `id="policy-view"`) {
		t.Fatalf("read key sees the policy editor:\n%s", page)
	}
	_, page = r.do(http.MethodGet, "/ui/devices/"+url.PathEscape(f.macs[0].UDID), nil)
	if strings.Contains(page, `id="actions"`) || strings.Contains(page, "/confirm?action=") {
		t.Fatalf("read key sees device actions:\n%s", page)
	}
	_, page = r.do(http.MethodGet, "/ui/exceptions", nil)
	if strings.Contains(page, `id="exception-form"`) {
		t.Fatal("read key sees the exception form")
	}
	for _, path := range []string{"/ui/policies/pilot", "/ui/policies/pilot/preview", "/ui/exceptions", "/ui/devices/" + url.PathEscape(f.macs[0].UDID) + "/retry"} {
		form := url.Values{"csrf": {rcsrf}, "mode": {"unmanaged"}, "scope": {"device"}, "id": {f.macs[0].UDID}, "kind": {"exempt"}, "reason": {"x"}, "expires": {"2099-01-01T00:00"}}
		if resp, _ := r.do(http.MethodPost, path, form); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("read key POST %s: %s", path, resp.Status)
		}
	}
	if resp, _ := r.do(http.MethodGet, "/ui/devices/"+url.PathEscape(f.macs[0].UDID)+"/confirm?action=retry", nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("read key confirm page: %s", resp.Status)
	}
	after, err := f.ts.admin.Policy(ctx, "pilot")
	if err != nil {
		t.Fatal(err)
	}
	if after.Revision != before.Revision {
		t.Fatalf("policy revision %d -> %d after refused posts", before.Revision, after.Revision)
	}
	if ex, err := f.ts.admin.Audit(ctx, 0, 1000); err != nil {
		t.Fatal(err)
	} else {
		for _, e := range ex {
			if e.Actor == "auditor" {
				t.Fatalf("audit entry by the read key: %+v", e)
			}
		}
	}

	// Signing out ends the session; its cookie no longer works.
	old := *u.cookies["sundial_session"]
	if resp, _ := u.do(http.MethodPost, "/ui/signout", url.Values{"csrf": {csrf}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out: %s", resp.Status)
	}
	u.cookies["sundial_session"] = &old
	if resp, _ := u.do(http.MethodGet, "/ui/", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("old cookie after sign-out: %s", resp.Status)
	}

	// Revoking a key ends its sessions at once.
	keys, err := f.ts.admin.APIKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.Name == "auditor" {
			if err := f.ts.admin.RevokeAPIKey(ctx, k.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if resp, _ := r.do(http.MethodGet, "/ui/", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoked key's session: %s", resp.Status)
	}
}

func TestConsolePagesRender(t *testing.T) {
	f := newConsoleFleet(t)
	// Two earlier days of the pilot group; the first view records today.
	for i, n := range []int{1, 2} {
		day := time.Now().UTC().AddDate(0, 0, -n).Format(time.DateOnly)
		if err := f.ts.app.store.PutComplianceDay(t.Context(), day, []storage.ComplianceDay{{Day: day, GroupID: "pilot", Devices: 3, Managed: 3, Compliant: i}}); err != nil {
			t.Fatal(err)
		}
	}
	u := f.user(t)
	u.signIn(f.adminKey)
	id := url.PathEscape(f.macs[0].UDID)
	for _, tc := range []struct {
		path string
		want []string
	}{
		{"/ui/", []string{`id="funnel"`, `data-group="pilot"`, "<svg", "Pilot Macs", `id="history"`, "pilot: 33.3% on " + time.Now().UTC().Format(time.DateOnly)}},
		{"/ui/devices", []string{"C02CONSOLE01", "C02CONSOLE04"}},
		{"/ui/devices?search=console02", []string{"C02CONSOLE02"}},
		{"/ui/devices?group=pilot&phase=notify", []string{"C02CONSOLE01", "C02CONSOLE02"}},
		{"/ui/devices/" + id, []string{`id="phase">notify<`, "14.6.1", "DeviceInformation", "Europe/Berlin", `id="actions"`, `id="declarations"`, "No enforcement declaration."}},
		{"/ui/devices/" + id + "/confirm?action=exception", []string{`id="confirm"`, `name="reason"`}},
		{"/ui/policies", []string{`data-group="pilot"`, "14.6.1 by"}},
		{"/ui/policies/pilot", []string{`id="policy-form"`, `value="14.6.1"`}},
		{"/ui/exceptions", []string{"No exceptions.", `id="exception-form"`}},
		{"/ui/catalog", []string{"14.6.1"}},
		{"/ui/audit", []string{"policy.set", "e2e-test"}},
	} {
		resp, page := u.do(http.MethodGet, tc.path, nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s", tc.path, resp.Status)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(page, w) {
				t.Errorf("GET %s: no %q in the page", tc.path, w)
			}
		}
	}
	// The chart has a point for each of the three days.
	if _, page := u.do(http.MethodGet, "/ui/", nil); strings.Count(page, "<circle") != 3 {
		t.Errorf("%d points in the chart, want 3", strings.Count(page, "<circle"))
	}
	// Filters exclude what they should.
	if _, page := u.do(http.MethodGet, "/ui/devices?search=console02", nil); strings.Contains(page, "C02CONSOLE01") {
		t.Error("search for console02 lists C02CONSOLE01")
	}
	if _, page := u.do(http.MethodGet, "/ui/devices?group=pilot&phase=notify", nil); strings.Contains(page, "C02CONSOLE03") || strings.Contains(page, "C02CONSOLE04") {
		t.Error("the pilot/notify filter lists other Macs")
	}
	// Unknown things are 404 pages, bad input a 400 with the API's message.
	if resp, _ := u.do(http.MethodGet, "/ui/devices/nope", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown device: %s", resp.Status)
	}
	if resp, page := u.do(http.MethodGet, "/ui/devices?failing=maybe", nil); resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "failing must be true or false") {
		t.Errorf("bad filter: %s", resp.Status)
	}
	// The API's search finds what the console's does.
	list, err := f.ts.admin.DevicesFiltered(t.Context(), "", 100, api.DeviceFilter{Search: "console02"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Devices) != 1 || list.Devices[0].ID != f.macs[1].UDID {
		t.Errorf("API search for console02: %+v", list.Devices)
	}
	// Sorting and paging.
	_, page := u.do(http.MethodGet, "/ui/devices?sort=serial&desc=true", nil)
	if i, j := strings.Index(page, "C02CONSOLE04"), strings.Index(page, "C02CONSOLE01"); i < 0 || j < 0 || i > j {
		t.Error("descending serial order is not descending")
	}
	if resp, _ := u.do(http.MethodGet, "/ui/devices?sort=shoe", nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown sort key: %s", resp.Status)
	}
}

func TestConsoleActions(t *testing.T) {
	f := newConsoleFleet(t)
	ctx := t.Context()
	u := f.user(t)
	csrf := u.signIn(f.adminKey)
	id := f.macs[0].UDID

	// Retry clears a surfaced failure, with the admin named in the timeline.
	st := schedState(t, f.ts, id, func(*scheduler.State) bool { return true })
	st.Fail("InstallFailed: test", time.Now(), time.Time{})
	if err := f.ts.app.store.Commit(ctx, []scheduler.Commit{{State: st}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, page := u.do(http.MethodGet, "/ui/devices/"+url.PathEscape(id), nil); !strings.Contains(page, "InstallFailed: test") {
		t.Fatal("the device page does not show the failure")
	}
	resp, _ := u.do(http.MethodPost, "/ui/devices/"+url.PathEscape(id)+"/retry", url.Values{"csrf": {csrf}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("retry: %s", resp.Status)
	}
	upd, err := f.ts.admin.DeviceUpdate(ctx, id, 5)
	if err != nil {
		t.Fatal(err)
	}
	if upd.State.Failure != "" || !strings.Contains(upd.History[len(upd.History)-1].Reason, "failure cleared by initial admin") {
		t.Fatalf("after retry: failure %q, history %+v", upd.State.Failure, upd.History)
	}

	// Push without a push certificate fails visibly and changes nothing.
	resp, page := u.do(http.MethodPost, "/ui/devices/"+url.PathEscape(id)+"/push", url.Values{"csrf": {csrf}})
	if resp.StatusCode == http.StatusSeeOther || !strings.Contains(page, "Push failed") {
		t.Fatalf("push without a certificate: %s", resp.Status)
	}

	// An exception refused for bad input shows the Manager's message and
	// stores nothing; a good one is stored, listed and cleared.
	form := url.Values{"csrf": {csrf}, "scope": {"device"}, "id": {id}, "kind": {"exempt"}, "reason": {""},
		"expires": {time.Now().Add(48 * time.Hour).Format("2006-01-02T15:04")}}
	resp, page = u.do(http.MethodPost, "/ui/exceptions", form)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `id="error"`) || !strings.Contains(page, "reason") {
		t.Fatalf("exception without a reason: %s", resp.Status)
	}
	form.Set("id", "no-such-mac")
	form.Set("reason", "x")
	if _, page := u.do(http.MethodPost, "/ui/exceptions", form); !strings.Contains(page, "No device no-such-mac") {
		t.Fatal("an exception for an unknown Mac was not refused")
	}
	if ex, err := f.ts.app.manager.Exceptions(ctx); err != nil || len(ex) != 0 {
		t.Fatalf("exceptions after refused grants: %+v %v", ex, err)
	}
	form.Set("id", "pilot")
	form.Set("scope", "group")
	form.Set("kind", "override")
	form.Set("deadline", time.Now().Add(24*time.Hour).Format("2006-01-02T15:04"))
	form.Set("reason", "release freeze")
	if resp, _ := u.do(http.MethodPost, "/ui/exceptions", form); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("group exception: %s", resp.Status)
	}
	if _, page := u.do(http.MethodGet, "/ui/exceptions", nil); !strings.Contains(page, "release freeze") {
		t.Fatal("the exception is not listed")
	}
	if resp, _ := u.do(http.MethodPost, "/ui/exceptions/group/pilot/clear", url.Values{"csrf": {csrf}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("clear: %s", resp.Status)
	}
	if ex, err := f.ts.app.manager.Exceptions(ctx); err != nil || len(ex) != 0 {
		t.Fatalf("exceptions after clearing: %+v %v", ex, err)
	}
	entries, err := f.ts.admin.Audit(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range entries {
		// The console's own actions (the set-up's key creation is audited
		// by the API too).
		if e.Actor == "initial admin" && strings.HasPrefix(e.Action, "exception.") {
			actions = append(actions, e.Action)
		}
	}
	if strings.Join(actions, ",") != "exception.set,exception.clear" {
		t.Fatalf("audited console actions = %v", actions)
	}
	// Unknown pages are 404 with the security headers.
	resp, _ = u.do(http.MethodGet, "/ui/nope", nil)
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("unknown page: %s, CSP %q", resp.Status, resp.Header.Get("Content-Security-Policy"))
	}
}

var (
	inputRe = regexp.MustCompile(`<(?:input|select)\b[^>]*>`)
	idRe    = regexp.MustCompile(`\bid="([^"]+)"`)
)

// TestConsoleFormsAreLabelled checks that every visible form control on
// every page has a label (a <label for> or an enclosing <label>).
func TestConsoleFormsAreLabelled(t *testing.T) {
	f := newConsoleFleet(t)
	u := f.user(t)
	u.signIn(f.adminKey)
	id := url.PathEscape(f.macs[0].UDID)
	_, signin := f.user(t).do(http.MethodGet, "/ui/signin", nil)
	pages := map[string]string{"/ui/signin": signin}
	for _, p := range []string{"/ui/", "/ui/devices", "/ui/devices/" + id, "/ui/devices/" + id + "/confirm?action=exception",
		"/ui/policies", "/ui/policies/pilot", "/ui/exceptions", "/ui/catalog", "/ui/audit"} {
		_, pages[p] = u.do(http.MethodGet, p, nil)
	}
	for p, page := range pages {
		for _, tag := range inputRe.FindAllString(page, -1) {
			if strings.Contains(tag, `type="hidden"`) {
				continue
			}
			m := idRe.FindStringSubmatch(tag)
			labelled := m != nil && strings.Contains(page, `<label for="`+m[1]+`"`)
			if !labelled {
				// An enclosing label: the tag sits between <label> and </label>.
				i := strings.Index(page, tag)
				open, close := strings.LastIndex(page[:i], "<label"), strings.LastIndex(page[:i], "</label>")
				labelled = open > close
			}
			if !labelled && !strings.Contains(tag, "aria-label=") {
				t.Errorf("%s: %s has no label", p, tag)
			}
		}
		if !strings.Contains(page, `<html lang="en">`) || !strings.Contains(page, `<main id="main">`) {
			t.Errorf("%s: no language or main landmark", p)
		}
	}
}
