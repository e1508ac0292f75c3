package main

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/api"
	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/internal/webhook"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog/poll"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// received counts the deliveries per event ID whose ID starts with prefix.
func (h *hookReceiver) received(prefix string) map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]int{}
	for id, n := range h.got {
		if strings.HasPrefix(id, prefix) {
			out[id] = n
		}
	}
	return out
}

// TestCatalogAndExpiringWebhooks: a release the leader's poller learns and
// one an admin adds each reach a receiver once, signed, under the ID of
// their version and build, across repeated polls, a sync of the same feed
// and a restart; an exception expiring within 24 h is announced once,
// signed, by the leader after a restart and not again after the next.
func TestCatalogAndExpiringWebhooks(t *testing.T) {
	t.Run("bolt", func(t *testing.T) { testCatalogAndExpiringWebhooks(t, "") })
	t.Run("pgsql", func(t *testing.T) { testCatalogAndExpiringWebhooks(t, replicaSchema(t)) })
}

func testCatalogAndExpiringWebhooks(t *testing.T, dsn string) {
	feed := newTLSFeed(t, gdmfWith(t))
	dir := t.TempDir()
	adjust := func(c *Config) {
		c.CatalogCA = feed.caFile
		if dsn != "" {
			c.Storage, c.StorageDSN = "pgsql", dsn
		}
	}
	ts := startTestServerWith(t, dir, adjust)
	recv := newHookReceiver(t)
	added, err := ts.admin.AddWebhook(t.Context(), "ops", recv.srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	recv.set(added.Secret, true)

	pollOnce := func(ts *testServer, etag string) {
		t.Helper()
		feed.mu.Lock()
		feed.etag = etag
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
	}
	// The snapshot itself announces nothing.
	pollOnce(ts, `"v1"`)
	feed.mu.Lock()
	feed.body = gdmfWith(t, map[string]any{"ProductVersion": "26.9", "Build": "25Z999",
		"PostingDate": time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly), "SupportedDevices": []string{"J413AP"}})
	feed.mu.Unlock()
	pollOnce(ts, `"v2"`)
	const relID = "catalog.new_release:26.9:25Z999"
	waitFor(t, func() bool { return recv.received(relID)[relID] == 1 })
	pollOnce(ts, `"v3"`) // the same body again
	if _, err := ts.admin.SyncCatalog(t.Context(), feed.srv.URL+"/v2/pmv"); err != nil {
		t.Fatal(err)
	}
	if err := ts.admin.AddRelease(t.Context(), api.ReleaseRequest{Version: "26.9.1", Build: "25Z1001",
		PostingDate: time.Now().UTC().Format(time.DateOnly), SupportedDevices: []string{"J413AP"}}); err != nil {
		t.Fatal(err)
	}
	const addID = "catalog.new_release:26.9.1:25Z1001"
	waitFor(t, func() bool { return recv.received(addID)[addID] == 1 })

	mac := ts.enroll(t)
	if _, err := ts.admin.SetException(t.Context(), scheduler.ScopeDevice, mac.UDID, softwareupdate.Exception{
		Exempt: true, Expires: time.Now().Add(3 * time.Hour).UTC().Truncate(time.Second), Reason: "travelling"}); err != nil {
		t.Fatal(err)
	}

	// The leader checks for expiring exceptions when it starts leading.
	ts.stop()
	ts = startTestServerWith(t, dir, adjust)
	prefix := webhook.TypeExceptionExpiring + ":"
	waitFor(t, func() bool { return len(recv.received(prefix)) == 1 })
	pollOnce(ts, `"v4"`)
	ts.stop()
	ts = startTestServerWith(t, dir, adjust)
	// The new leader's check has nothing left to announce.
	if n, err := webhook.CheckExpiring(t.Context(), ts.app.store, time.Now(), webhook.ExpiringWithin); err != nil || n != 0 {
		t.Fatalf("check after the announcement: %d queued, %v", n, err)
	}
	if err := ts.app.hooks.Pass(t.Context()); err != nil {
		t.Fatal(err)
	}
	for id, n := range recv.received("") {
		if n != 1 {
			t.Errorf("event %s delivered %d times", id, n)
		}
	}
	if got := recv.received("catalog.new_release:"); len(got) != 2 {
		t.Errorf("release events = %v, want %s and %s", got, relID, addID)
	}
	if _, bad := recv.count(nil); len(bad) != 0 {
		t.Fatalf("receiver refused deliveries: %v", bad)
	}
}

// openTestApp builds an app that does not serve, on bbolt or (dsn set)
// PostgreSQL, with the given clock.
func openTestApp(t *testing.T, dir, dsn string, clk Clock) *app {
	t.Helper()
	cfg := Config{Listen: "127.0.0.1:0", DataDir: dir, PublicURL: "http://127.0.0.1:1", NoTLS: true, ChallengeMode: "shared",
		LogLevel: "warn", LogFormat: "text", FlushInterval: 50 * time.Millisecond, ShutdownTimeout: 5 * time.Second,
		APNsURL: "https://127.0.0.1:1"}
	if dsn != "" {
		cfg.Storage, cfg.StorageDSN = "pgsql", dsn
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a, err := newApp(cfg, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})), clk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// queued lists the event IDs waiting in the outbox with prefix.
func queued(t *testing.T, a *app, prefix string) []string {
	t.Helper()
	ds, err := a.store.DueWebhooks(t.Context(), a.clock.Now().Add(time.Hour), 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range ds {
		if strings.HasPrefix(d.EventID, prefix) {
			out = append(out, d.EventID)
		}
	}
	slices.Sort(out)
	return out
}

func addTestEndpoint(t *testing.T, a *app) {
	t.Helper()
	if err := a.store.PutWebhookEndpoint(t.Context(), storage.WebhookEndpoint{ID: "ops", URL: "http://127.0.0.1:1/hook",
		Secret: []byte("sealed"), Created: a.clock.Now()}); err != nil {
		t.Fatal(err)
	}
}

// TestHeldBackReleaseAnnouncedOnItsDay: a release a feed lists with a
// posting date in the future is announced when the leader's poller admits
// it on its day, not when the feed arrives, and once.
func TestHeldBackReleaseAnnouncedOnItsDay(t *testing.T) {
	clk := clock.NewFake(time.Now().UTC())
	a := openTestApp(t, t.TempDir(), "", clk)
	addTestEndpoint(t, a)
	ctx := t.Context()
	body := gdmfWith(t, map[string]any{"ProductVersion": "26.10", "Build": "25Z1000",
		"PostingDate": clk.Now().AddDate(0, 0, 3).Format(time.DateOnly), "SupportedDevices": []string{"J413AP"}})
	if _, err := a.applyFeed(ctx, pollerActor, "https://feed.example/v2/pmv", body); err != nil {
		t.Fatal(err)
	}
	const id = "catalog.new_release:26.10:25Z1000"
	if got := queued(t, a, "catalog.new_release:"); len(got) != 0 {
		t.Fatalf("a release posted in the future was announced: %v", got)
	}
	sink := pollSink{a}
	st := poll.State{URL: "https://feed.example/v2/pmv"}
	clk.Advance(4 * 24 * time.Hour)
	for range 2 {
		st.CheckedAt = clk.Now()
		if err := sink.SaveState(ctx, "gdmf", st); err != nil {
			t.Fatal(err)
		}
	}
	if got := queued(t, a, "catalog.new_release:"); !slices.Equal(got, []string{id}) {
		t.Fatalf("queued on the posting day: %v, want [%s]", got, id)
	}
	// Delivered, then the same feed synced again: not announced again.
	if err := a.store.AckWebhook(ctx, id, "ops"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.applyFeed(ctx, "admin", "https://feed.example/v2/pmv", body); err != nil {
		t.Fatal(err)
	}
	if got := queued(t, a, "catalog.new_release:"); len(got) != 0 {
		t.Fatalf("announced again: %v", got)
	}
}

// TestReplicasAnnounceReleaseOnce: two replicas on one PostgreSQL
// database; a release one syncs is announced once, and the other syncing
// the same feed before it refreshed its catalog (so the release is new to
// it too) does not announce it again, even after delivery.
func TestReplicasAnnounceReleaseOnce(t *testing.T) {
	dsn := replicaSchema(t)
	a := openTestApp(t, t.TempDir(), dsn, clock.System{})
	b := openTestApp(t, t.TempDir(), dsn, clock.System{})
	addTestEndpoint(t, a)
	ctx := t.Context()
	body := gdmfWith(t, map[string]any{"ProductVersion": "26.9", "Build": "25Z999",
		"PostingDate": time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly), "SupportedDevices": []string{"J413AP"}})
	res, err := a.applyFeed(ctx, pollerActor, "https://feed.example/v2/pmv", body)
	if err != nil || res.New != 1 {
		t.Fatalf("replica 1 sync = %+v, %v", res, err)
	}
	const id = "catalog.new_release:26.9:25Z999"
	if got := queued(t, a, "catalog.new_release:"); !slices.Equal(got, []string{id}) {
		t.Fatalf("queued = %v", got)
	}
	if err := a.store.AckWebhook(ctx, id, "ops"); err != nil {
		t.Fatal(err)
	}
	res, err = b.applyFeed(ctx, "admin", "https://feed.example/v2/pmv", body)
	if err != nil || res.New != 1 {
		t.Fatalf("replica 2 sync = %+v, %v", res, err)
	}
	if got := queued(t, b, "catalog.new_release:"); len(got) != 0 {
		t.Fatalf("replica 2 announced the release again: %v", got)
	}
}

// TestReleaseAdmittedAcrossRestartAnnounced: a held-back release whose
// posting day comes while the server is down is admitted by the rebuild
// at start, and the new leader announces it once.
func TestReleaseAdmittedAcrossRestartAnnounced(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(time.Now().UTC())
	a := openTestApp(t, dir, "", clk)
	addTestEndpoint(t, a)
	ctx := t.Context()
	body := gdmfWith(t, map[string]any{"ProductVersion": "26.10", "Build": "25Z1000",
		"PostingDate": clk.Now().AddDate(0, 0, 3).Format(time.DateOnly), "SupportedDevices": []string{"J413AP"}})
	if _, err := a.applyFeed(ctx, pollerActor, "https://feed.example/v2/pmv", body); err != nil {
		t.Fatal(err)
	}
	if err := a.savePollState(ctx, "gdmf", poll.State{URL: "https://feed.example/v2/pmv", CheckedAt: clk.Now(), ChangedAt: clk.Now()}); err != nil {
		t.Fatal(err)
	}
	a.announceAdmitted(ctx) // still in the future: nothing
	if got := queued(t, a, "catalog.new_release:"); len(got) != 0 {
		t.Fatalf("announced before its day: %v", got)
	}
	a.Close()
	clk.Advance(4 * 24 * time.Hour)
	b := openTestApp(t, dir, "", clk)
	if _, ok := b.catalog.Lookup(catalog.MustParseVersion("26.10")); !ok {
		t.Fatal("the rebuild did not admit the release")
	}
	const id = "catalog.new_release:26.10:25Z1000"
	for range 2 {
		b.announceAdmitted(ctx)
	}
	if got := queued(t, b, "catalog.new_release:"); !slices.Equal(got, []string{id}) {
		t.Fatalf("queued after the restart: %v, want [%s]", got, id)
	}
	if err := b.store.AckWebhook(ctx, id, "ops"); err != nil {
		t.Fatal(err)
	}
	b.announceAdmitted(ctx)
	if got := queued(t, b, "catalog.new_release:"); len(got) != 0 {
		t.Fatalf("announced again after delivery: %v", got)
	}
}
