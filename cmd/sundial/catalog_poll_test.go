package main

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/api"
	"github.com/sundial-mdm/sundial/certs/certstest"
	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/mdmtest"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog/poll"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// gdmfWith returns the embedded gdmf snapshot plus the given macOS entries.
func gdmfWith(t *testing.T, extra ...map[string]any) []byte {
	t.Helper()
	raw, err := os.ReadFile("../../softwareupdate/catalog/snapshot/gdmf-v2-pmv.json")
	if err != nil {
		t.Fatal(err)
	}
	var feed map[string]map[string][]map[string]any
	if err := json.Unmarshal(raw, &feed); err != nil {
		t.Fatal(err)
	}
	feed["PublicAssetSets"]["macOS"] = append(feed["PublicAssetSets"]["macOS"], extra...)
	out, err := json.Marshal(feed)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// tlsFeed is an in-repo TLS feed server that answers the gdmf path with an
// ETag and counts what it served.
type tlsFeed struct {
	mu     sync.Mutex
	body   []byte
	etag   string
	served map[int]int // status -> count
	srv    *httptest.Server
	caFile string
}

func newTLSFeed(t *testing.T, body []byte) *tlsFeed {
	f := &tlsFeed{body: body, etag: `"v1"`, served: map[int]int{}}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if r.URL.Path != "/v2/pmv" {
			f.served[http.StatusNotFound]++
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("If-None-Match") == f.etag {
			f.served[http.StatusNotModified]++
			w.WriteHeader(http.StatusNotModified)
			return
		}
		f.served[http.StatusOK]++
		w.Header().Set("ETag", f.etag)
		w.Write(f.body)
	}))
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	f.caFile = filepath.Join(t.TempDir(), "feed-ca.pem")
	if err := os.WriteFile(f.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *tlsFeed) count(status int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.served[status]
}

func auditActions(t *testing.T, ts *testServer) map[string][]scheduler.AuditEntry {
	t.Helper()
	entries, err := ts.admin.Audit(t.Context(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]scheduler.AuditEntry{}
	for _, e := range entries {
		out[e.Action] = append(out[e.Action], e)
	}
	return out
}

// TestCatalogPollsByItself is issue 20 item 13: the scheduler leader
// fetches the feed with no admin action, merges a new release, holds back
// one dated in the future, audits the sync, and /healthz and /metrics
// report the catalog's age; the data survives a restart.
func TestCatalogPollsByItself(t *testing.T) {
	today := time.Now().UTC().Format(time.DateOnly)
	future := time.Now().UTC().AddDate(0, 3, 0).Format(time.DateOnly)
	feed := newTLSFeed(t, gdmfWith(t,
		map[string]any{"ProductVersion": "26.9", "Build": "25Z999", "PostingDate": today, "SupportedDevices": []string{"J413AP"}},
		map[string]any{"ProductVersion": "26.10", "Build": "25Z1000", "PostingDate": future, "SupportedDevices": []string{"J413AP"}},
	))
	dir := t.TempDir()
	adjust := func(c *Config) {
		c.CatalogInterval = time.Minute
		c.CatalogGDMFURL = feed.srv.URL + "/v2/pmv"
		c.CatalogCA = feed.caFile
	}
	ts := startTestServerWith(t, dir, adjust)

	versions := func(ts *testServer) map[string]bool {
		rels, err := ts.admin.Catalog(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, r := range rels {
			out[r.Version] = true
		}
		return out
	}
	var st *api.CatalogStatus
	waitFor(t, func() bool {
		var err error
		if st, err = ts.admin.CatalogStatus(t.Context()); err != nil {
			t.Fatal(err)
		}
		return !st.Feeds["gdmf"].CheckedAt.IsZero()
	})
	if !versions(ts)["26.9"] || versions(ts)["26.10"] {
		t.Errorf("after the poll: 26.9 listed %v, 26.10 (posted in the future) listed %v", versions(ts)["26.9"], versions(ts)["26.10"])
	}
	if st.Stale || st.AgeSeconds > 60 || !st.Polling || st.Feeds["gdmf"].ETag != `"v1"` || len(st.HeldBack) != 1 || !strings.Contains(st.HeldBack[0], "26.10") {
		t.Errorf("catalog status = %+v", st)
	}
	syncs := auditActions(t, ts)["catalog.sync"]
	if len(syncs) != 1 || syncs[0].Actor != pollerActor || !strings.Contains(string(syncs[0].After), "26.10") {
		t.Errorf("catalog.sync audit entries = %+v", syncs)
	}

	// /healthz shows the age and no catalog warning; /metrics the gauge.
	resp, err := ts.getKeyed("/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var h health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if h.Catalog == nil || h.Catalog.Stale || strings.Contains(strings.Join(h.Issues, "\n"), "catalog") {
		t.Errorf("healthz catalog = %+v, issues %q", h.Catalog, h.Issues)
	}
	resp, err = ts.getKeyed("/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var metrics bytes.Buffer
	io.Copy(&metrics, resp.Body)
	resp.Body.Close()
	for _, m := range []string{"sundial_catalog_age_seconds ", "sundial_catalog_stale 0", `sundial_catalog_feed_failures{feed="gdmf"} 0`} {
		if !strings.Contains(metrics.String(), m) {
			t.Errorf("metrics lack %q", m)
		}
	}

	// A restart keeps the release, the validators and the last check: the
	// next check is due an interval after the last one, not at start.
	checked := st.Feeds["gdmf"].CheckedAt
	ts.stop()
	ts = startTestServerWith(t, dir, adjust)
	if !versions(ts)["26.9"] {
		t.Error("the polled release did not survive a restart")
	}
	st, err = ts.admin.CatalogStatus(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if g := st.Feeds["gdmf"]; g.ETag != `"v1"` || !g.CheckedAt.Equal(checked) || len(st.HeldBack) != 1 {
		t.Errorf("catalog status after restart = %+v", st)
	}
	if n := feed.count(http.StatusOK); n != 1 {
		t.Errorf("feed served %d full bodies, want 1", n)
	}
}

// TestCatalogStaleWithoutPolling: a server that never synced warns that
// its catalog (the built-in snapshot) is old.
func TestCatalogStaleWithoutPolling(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	resp, err := ts.getKeyed("/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var h health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// The built-in snapshot dates from 2026-08-22.
	if h.Status != "warn" || h.Catalog == nil || !h.Catalog.Stale || !strings.Contains(strings.Join(h.Issues, "\n"), "release catalog is") {
		t.Errorf("healthz = %+v", h)
	}
}

// TestFailedPollRebuildsNothing: failed checks of a feed never fetched
// store a poll state, but no body: the catalog has nothing to rebuild.
func TestFailedPollRebuildsNothing(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	ctx := t.Context()
	for failures := 1; failures <= 2; failures++ {
		st := poll.State{URL: poll.GDMFURL, Failures: failures, LastError: "no such host", NextAt: time.Now().Add(5 * time.Minute)}
		if err := ts.app.savePollState(ctx, "gdmf", st); err != nil {
			t.Fatal(err)
		}
		if changed, err := ts.app.refreshCatalog(ctx); err != nil || changed {
			t.Errorf("refresh after failed check %d = %v, %v; want no rebuild", failures, changed, err)
		}
	}
}

// TestCatalogRemoveAndAudit is items 13 and 14: releases added by hand can
// be removed, feed releases cannot, future posting dates are refused, and
// every change to what Macs receive is in the audit log.
func TestCatalogRemoveAndAudit(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	env := map[string]string{"SUNDIAL_URL": ts.url, "SUNDIAL_API_KEY": ts.admin.APIKey}
	cli := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(t.Context(), append(args, "--data-dir", ts.dir), func(k string) string { return env[k] }, &out, &errb)
		return code, out.String() + errb.String()
	}
	future := time.Now().UTC().AddDate(0, 0, 3).Format(time.DateOnly)
	if code, out := cli("catalog", "add", "--version", "26.9.1", "--posted", future, "--devices", "J413AP"); code != exitUsage || !strings.Contains(out, "future") {
		t.Errorf("add with a future posting date = %d %q", code, out)
	}
	if code, out := cli("catalog", "add", "--version", "26.9.1", "--posted", "2026-11-25", "--devices", "J413AP"); code != 0 {
		t.Fatalf("add = %d %q", code, out)
	}
	if code, out := cli("catalog", "remove", "26.6.2"); code != exitError || !strings.Contains(out, "only releases added by hand") {
		t.Errorf("remove a feed release = %d %q", code, out)
	}
	if code, out := cli("catalog", "remove", "27.1"); code != exitNotFound {
		t.Errorf("remove an unknown release = %d %q", code, out)
	}
	if code, out := cli("catalog", "remove", "banana"); code != exitUsage {
		t.Errorf("remove a malformed version = %d %q", code, out)
	}
	if code, out := cli("catalog", "remove", "26.9.1"); code != 0 || !strings.Contains(out, "removed macOS 26.9.1") {
		t.Fatalf("remove = %d %q", code, out)
	}
	rels, err := ts.admin.Catalog(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rels {
		if r.Version == "26.9.1" {
			t.Error("removed release still listed")
		}
	}
	if code, out := cli("catalog", "status"); code != 0 || !strings.Contains(out, "STALE") {
		t.Errorf("catalog status = %d %q", code, out)
	}

	// Changes to what Macs receive, through the API.
	mac := ts.enroll(t)
	cmd, _ := mdm.NewCommand("ProfileList", nil)
	if _, err := ts.admin.Enqueue(t.Context(), mac.UDID, cmd.Raw); err != nil {
		t.Fatal(err)
	}
	key, err := ts.admin.CreateAPIKey(t.Context(), "ci")
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.admin.RevokeAPIKey(t.Context(), key.ID); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	certPEM, keyPEM := certstest.NewPushCert(testTopic, now.Add(-time.Hour), now.Add(300*24*time.Hour))
	if _, err := ts.admin.SetPushCert(t.Context(), api.PushCertRequest{CertPEM: string(certPEM), KeyPEM: string(keyPEM)}); err != nil {
		t.Fatal(err)
	}
	if err := ts.admin.RotateAgentSecret(t.Context(), mac.UDID); err != nil {
		t.Fatal(err)
	}
	// A refused change is not audited.
	if _, err := ts.admin.Enqueue(t.Context(), mac.UDID, []byte("not a plist")); err == nil {
		t.Fatal("a malformed command was accepted")
	}

	acts := auditActions(t, ts)
	check := func(action, subject, contains string) {
		t.Helper()
		es := acts[action]
		if len(es) != 1 || es[0].Subject != subject || es[0].Actor == "" || es[0].At.IsZero() ||
			!strings.Contains(string(es[0].Before)+string(es[0].After), contains) {
			t.Errorf("%s audit entries = %+v, want one for %s with %q", action, es, subject, contains)
		}
	}
	check("catalog.add", "26.9.1", "25")
	check("catalog.remove", "26.9.1", "J413AP")
	check("command.enqueue", mac.UDID, cmd.UUID)
	check("apikey.create", key.ID, `"name":"ci"`)
	check("apikey.revoke", key.ID, key.ID)
	check("pushcert.set", testTopic, testTopic)
	check("agent.rotate", mac.UDID, "")
	for _, es := range acts {
		for _, e := range es {
			for _, secret := range []string{key.Secret, string(keyPEM), "PRIVATE KEY"} {
				if strings.Contains(string(e.Before)+string(e.After), secret) {
					t.Errorf("audit entry %s holds a secret", e.Action)
				}
			}
		}
	}
	if n := len(acts["command.enqueue"]); n != 1 {
		t.Errorf("%d command.enqueue entries, want 1 (the refused one is not audited)", n)
	}
}

// TestExceptionsCLI is item 14: exceptions grant, list and revoke from the
// CLI, each audited.
func TestExceptionsCLI(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	env := map[string]string{"SUNDIAL_URL": ts.url, "SUNDIAL_API_KEY": ts.admin.APIKey}
	cli := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(t.Context(), append(args, "--data-dir", ts.dir), func(k string) string { return env[k] }, &out, &errb)
		return code, out.String() + errb.String()
	}
	mac := ts.enroll(t)
	for _, bad := range [][]string{
		{"exceptions", "grant", "--exempt", "--expires", "14d", "--reason", "r"},                                       // no scope
		{"exceptions", "grant", "--device", mac.UDID, "--group", "g", "--exempt", "--expires", "14d", "--reason", "r"}, // both
		{"exceptions", "grant", "--device", mac.UDID, "--exempt", "--expires", "soon", "--reason", "r"},                // bad time
		{"exceptions", "grant", "--device", mac.UDID, "--expires", "14d", "--reason", "r"},                             // neither kind
		{"exceptions", "grant", "--device", mac.UDID, "--exempt", "--expires", "14d"},                                  // no reason
		{"exceptions", "grant", "--device", mac.UDID, "--exempt", "--expires", "400d", "--reason", "r"},                // too long
		{"exceptions", "grant", "--device", mac.UDID, "--deadline", "20d", "--expires", "14d", "--reason", "r"},        // deadline after expiry
		{"exceptions", "revoke"},
	} {
		if code, out := cli(bad...); code != exitUsage {
			t.Errorf("%q = %d %q, want exit %d", bad, code, out, exitUsage)
		}
	}
	if code, out := cli("exceptions", "list", "-o", "json"); code != 0 || !strings.Contains(out, `"exceptions": []`) {
		t.Errorf("list before grants = %d %q", code, out)
	}
	if code, out := cli("exceptions", "grant", "--device", mac.UDID, "--exempt", "--expires", "14d", "--reason", "travelling"); code != 0 || !strings.Contains(out, "exempt until") {
		t.Fatalf("grant = %d %q", code, out)
	}
	if code, out := cli("exceptions", "grant", "--group", "default", "--deadline", "7d", "--expires", "10d", "--reason", "freeze"); code != 0 || !strings.Contains(out, "deadline") {
		t.Fatalf("grant to a group = %d %q", code, out)
	}
	code, out := cli("exceptions", "list")
	if code != 0 || !strings.Contains(out, mac.UDID) || !strings.Contains(out, "travelling") || !strings.Contains(out, "freeze") || !strings.Contains(out, "exempt") {
		t.Errorf("list = %d %q", code, out)
	}
	if code, out := cli("exceptions", "revoke", "--device", mac.UDID); code != 0 {
		t.Fatalf("revoke = %d %q", code, out)
	}
	if code, out := cli("exceptions", "revoke", "--device", mac.UDID); code != exitNotFound {
		t.Errorf("revoke twice = %d %q, want exit %d", code, out, exitNotFound)
	}
	recs, err := ts.admin.Exceptions(t.Context())
	if err != nil || len(recs) != 1 || recs[0].Scope != scheduler.ScopeGroup {
		t.Errorf("exceptions after revoke = %+v, %v", recs, err)
	}
	acts := auditActions(t, ts)
	if len(acts["exception.set"]) != 2 || len(acts["exception.clear"]) != 1 {
		t.Errorf("exception audit entries: %d set, %d clear; want 2, 1", len(acts["exception.set"]), len(acts["exception.clear"]))
	}
}

// TestPolledReleaseReevaluatesAtOnce: a release the poller brings in
// re-evaluates automatic policies without waiting for the next pass.
func TestPolledReleaseReevaluatesAtOnce(t *testing.T) {
	feed := newTLSFeed(t, gdmfWith(t))
	ts := startTestServerWith(t, t.TempDir(), func(c *Config) { c.CatalogCA = feed.caFile })
	mac := ts.enroll(t, mdmtest.WithOS("26.6.2", "25G83"))
	if _, err := mac.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	board := ts.device(t, mac.UDID).Inventory.SoftwareUpdateDeviceID
	if board == "" {
		t.Fatal("the simulated Mac reported no board ID")
	}
	if _, err := ts.admin.SetPolicy(t.Context(), scheduler.DefaultGroupID, softwareupdate.Policy{Mode: softwareupdate.ModeAutomatic,
		DelayDays: 1, TimeOfDay: "00:00", TimeZone: "UTC"}); err != nil {
		t.Fatal(err)
	}
	target := func() string {
		rep, err := ts.admin.DeviceUpdate(t.Context(), mac.UDID, 0)
		if err != nil || rep.State == nil {
			return "?"
		}
		return rep.State.Target
	}
	waitFor(t, func() bool { return target() != "?" })
	if got := target(); got == "26.9" {
		t.Fatalf("target before the release exists = %s", got)
	}
	feed.mu.Lock()
	feed.body = gdmfWith(t, map[string]any{"ProductVersion": "26.9", "Build": "25Z999",
		"PostingDate": time.Now().UTC().AddDate(0, 0, -5).Format(time.DateOnly), "SupportedDevices": []string{board}})
	feed.etag = `"v2"`
	feed.mu.Unlock()
	hc, err := ts.app.feedClient()
	if err != nil {
		t.Fatal(err)
	}
	p := poll.New([]poll.Feed{{Kind: "gdmf", URL: feed.srv.URL + "/v2/pmv"}}, hc, clock.System{}, pollSink{ts.app}, time.Hour, nil, nil)
	p.RunOnce(t.Context())
	if st := p.States()["gdmf"]; st.Failures != 0 {
		t.Fatalf("poll failed: %+v", st)
	}
	waitFor(t, func() bool { return target() == "26.9" })
}

// TestReplicasFollowCatalogChanges: two replicas on one PostgreSQL
// database. A release one of them syncs, and one an admin adds and then
// removes through the other, reach both catalogs at the next refresh.
func TestReplicasFollowCatalogChanges(t *testing.T) {
	dsn := replicaSchema(t)
	open := func(n int) *app {
		cfg := Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), PublicURL: "http://127.0.0.1:1", NoTLS: true, ChallengeMode: "shared",
			LogLevel: "warn", LogFormat: "text", FlushInterval: 50 * time.Millisecond, ShutdownTimeout: 5 * time.Second,
			APNsURL: "https://127.0.0.1:1", Storage: "pgsql", StorageDSN: dsn}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		a, err := newApp(cfg, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})).With("replica", n), clock.System{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		return a
	}
	a, b := open(1), open(2)
	ctx := t.Context()
	has := func(x *app, v string) bool {
		_, ok := x.catalog.Lookup(catalog.MustParseVersion(v))
		return ok
	}
	if changed, err := b.refreshCatalog(ctx); err != nil || changed {
		t.Fatalf("refresh with nothing new = %v, %v", changed, err)
	}
	body := gdmfWith(t, map[string]any{"ProductVersion": "26.9", "Build": "25Z999",
		"PostingDate": time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly), "SupportedDevices": []string{"J413AP"}})
	if _, err := a.applyFeed(ctx, pollerActor, "https://feed.example/v2/pmv", body); err != nil {
		t.Fatal(err)
	}
	if err := a.savePollState(ctx, "gdmf", poll.State{URL: "https://feed.example/v2/pmv", CheckedAt: time.Now(), ChangedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if has(b, "26.9") {
		t.Fatal("replica 2 knew the release before refreshing")
	}
	if changed, err := b.refreshCatalog(ctx); err != nil || !changed || !has(b, "26.9") {
		t.Fatalf("refresh after another replica's sync = %v, %v; 26.9 known: %v", changed, err, has(b, "26.9"))
	}
	if !b.catalog.AsOf().After(catalog.SnapshotTaken) {
		t.Errorf("replica 2's AsOf = %v, want the sync's time", b.catalog.AsOf())
	}
	posted, _ := time.Parse(time.DateOnly, "2026-11-25")
	if err := (catalogSource{b}).AddRelease(ctx, "admin", catalog.Release{Version: catalog.MustParseVersion("26.9.1"), PostingDate: posted, SupportedDevices: []string{"J413AP"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.refreshCatalog(ctx); err != nil || !has(a, "26.9.1") {
		t.Fatalf("replica 1 after replica 2's add: %v, 26.9.1 known: %v", err, has(a, "26.9.1"))
	}
	if _, err := (catalogSource{a}).RemoveRelease(ctx, "admin", catalog.MustParseVersion("26.9.1")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.refreshCatalog(ctx); err != nil || has(b, "26.9.1") {
		t.Fatalf("replica 2 after replica 1's remove: %v, 26.9.1 still known: %v", err, has(b, "26.9.1"))
	}
}
