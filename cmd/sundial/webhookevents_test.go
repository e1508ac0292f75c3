package main

import (
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/api"
	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/internal/webhook"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog/poll"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
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
