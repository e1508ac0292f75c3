package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sundial-mdm/sundial/api"
	"github.com/sundial-mdm/sundial/certs/certstest"
	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/storage/bolt"
)

// getKeyed GETs path with the admin API key: on the device listener (no
// --admin-listen) /metrics and the detailed /healthz need one.
func (ts *testServer) getKeyed(path string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, ts.url+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+ts.admin.APIKey)
	return ts.hc.Do(req)
}

func (ts *testServer) health(t *testing.T) health {
	t.Helper()
	resp, err := ts.getKeyed("/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	return h
}

func (ts *testServer) metric(t *testing.T, name string) string {
	t.Helper()
	resp, err := ts.getKeyed("/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// TestHandlerPanicIsLoud: a panicking handler answers 500, is logged at
// error with the request, counted in /metrics, and turns /healthz
// degraded.
func TestHandlerPanicIsLoud(t *testing.T) {
	dir := t.TempDir()
	var logs bytes.Buffer
	cfg := Config{Listen: "127.0.0.1:0", DataDir: dir, PublicURL: "https://127.0.0.1:1", ChallengeMode: "shared",
		LogLevel: "info", LogFormat: "text", FlushInterval: time.Second, ShutdownTimeout: time.Second, APNsURL: "https://127.0.0.1:1"}
	a, err := newApp(cfg, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})), clock.System{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	srv := httptest.NewServer(a.recoverPanics(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("assertion failed: page 3: has unexpected type/flags: 40")
	})))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/v1/devices?secret=hunter2")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("status = %d, want 500", resp.StatusCode)
	}
	if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "path=/api/v1/devices") ||
		!strings.Contains(l, "page 3: has unexpected type") || strings.Contains(l, "hunter2") {
		t.Errorf("log = %s", l)
	}
	rec := httptest.NewRecorder()
	a.healthz(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	var h health
	json.Unmarshal(rec.Body.Bytes(), &h)
	if h.Status != "degraded" || len(h.Issues) == 0 || !strings.Contains(h.Issues[0], "1 request handler panicked") {
		t.Errorf("healthz = %+v", h)
	}
	// The registry /metrics serves (behind an API key on the device
	// listener; this app has no key).
	srvMetrics := httptest.NewServer(promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{}))
	defer srvMetrics.Close()
	mresp, err := http.Get(srvMetrics.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	if !strings.Contains(string(b), "sundial_http_handler_panics_total 1") {
		t.Errorf("/metrics lacks the panic count")
	}
}

// damageLeaf adds a bucket of filler records to a stopped server's
// database and gives one of its leaf pages flags no page has, as a torn
// write could. (The server's own buckets are small enough to be inline in
// the root page at this size.) root damages the root page's leaf instead.
func damageLeaf(t *testing.T, path string, root bool) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("zz-filler"))
		if err != nil {
			return err
		}
		for i := range 2000 {
			if err := b.Put(fmt.Appendf(nil, "filler-%05d", i), bytes.Repeat([]byte("v"), 100)); err != nil {
				return err
			}
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	r, err := bolt.CheckFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for id := uint64(2); id < r.Pages; id++ {
		off := int64(id) * int64(r.PageSize)
		page := raw[off : off+int64(r.PageSize)]
		isLeaf := binary.LittleEndian.Uint16(page[8:]) == 0x02
		if isLeaf && bytes.Contains(page, []byte("filler-0")) != root && (!root || bytes.Contains(page, []byte("zz-filler"))) {
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt([]byte{0x40, 0}, off+8); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatal("no leaf page to damage")
}

// TestDamagedDatabaseIsLoud damages a page of a stopped server's database:
// the server starts (the quick check sees only meta pages and size), its
// background check finds the damage, /healthz says degraded with how to
// restore, and `storage check` exits 1.
func TestDamagedDatabaseIsLoud(t *testing.T) {
	dir := t.TempDir()
	ts := startTestServer(t, dir)
	for range 3 {
		ts.enroll(t)
	}
	ts.stop()
	db := filepath.Join(dir, dbFile)
	if r := runArgs(t, []string{"storage", "check", "--data-dir", dir}); r.code != 0 || !strings.Contains(r.out, "ok\n") {
		t.Fatalf("storage check of a sound file = %+v", r)
	}
	damageLeaf(t, db, false)
	r := runArgs(t, []string{"storage", "check", "--file", db})
	if r.code != exitError || !strings.Contains(r.out, "damaged:") || !strings.Contains(r.stderr, "To restore") {
		t.Errorf("storage check of a damaged file = %+v", r)
	}
	ts = startTestServer(t, dir)
	var h health
	waitFor(t, func() bool { h = ts.health(t); return h.Status == "degraded" })
	if !strings.Contains(h.Issues[0], "database damaged") || !strings.Contains(h.Issues[0], "To restore") {
		t.Errorf("healthz = %+v", h)
	}
	// The check does not block the server's own work.
	if _, err := ts.admin.Devices(t.Context(), "", 10); err != nil && !strings.Contains(err.Error(), "internal") {
		t.Errorf("devices after damage: %v", err)
	}
}

// TestTruncatedDatabaseRefused: the server refuses to start on a truncated
// file with what is wrong and how to restore, instead of faulting.
func TestTruncatedDatabaseRefused(t *testing.T) {
	dir := t.TempDir()
	ts := startTestServer(t, dir)
	for range 3 {
		ts.enroll(t)
	}
	ts.stop()
	db := filepath.Join(dir, dbFile)
	rep, err := bolt.CheckFile(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(db, int64(rep.Pages-1)*int64(rep.PageSize)); err != nil {
		t.Fatal(err)
	}
	r := runArgs(t, []string{"server", "--listen", "127.0.0.1:0", "--data-dir", dir, "--apns-url", "https://127.0.0.1:1"})
	if r.code != exitError || !strings.Contains(r.stderr, "truncated") || !strings.Contains(r.stderr, "To restore") ||
		!strings.Contains(r.stderr, "sundial backup") {
		t.Errorf("server on a truncated file = %+v", r)
	}
	if r := runArgs(t, []string{"storage", "check", "--data-dir", dir}); r.code != exitError || !strings.Contains(r.out, "truncated") {
		t.Errorf("storage check = %+v", r)
	}
}

// TestDamagedRootRefused: damage that the server's own start-up meets is
// refused with the restore instructions, not a panic.
func TestDamagedRootRefused(t *testing.T) {
	dir := t.TempDir()
	ts := startTestServer(t, dir)
	ts.enroll(t)
	ts.stop()
	damageLeaf(t, filepath.Join(dir, dbFile), true)
	r := runArgs(t, []string{"server", "--listen", "127.0.0.1:0", "--data-dir", dir, "--apns-url", "https://127.0.0.1:1"})
	if r.code != exitError || !strings.Contains(r.stderr, "database file is damaged") || !strings.Contains(r.stderr, "To restore") {
		t.Errorf("server on a damaged root = %+v", r)
	}
}

func TestStorageCommandsRefuseMissingFiles(t *testing.T) {
	for _, args := range [][]string{
		{"storage", "migrate", "--from", "bolt:/no/such/file", "--to", "pgsql:postgres://127.0.0.1:1/x"},
		{"storage", "check", "--file", "/no/such/file"},
	} {
		if r := runArgs(t, args); r.code != exitNotFound || !strings.Contains(r.stderr, "/no/such/file") || strings.Contains(r.out, "migration complete") {
			t.Errorf("%v = %+v", args, r)
		}
	}
	if _, err := os.Stat("/no/such/file"); err == nil {
		t.Error("a command created /no/such/file")
	}
}

// TestHealthFollowsPushCertificate: a certificate set through the API
// clears the previous "no certificate" error at once, not after the push
// service's pause.
func TestHealthFollowsPushCertificate(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	mac := ts.enroll(t)
	ts.app.pusher.Notify(mac.UDID) // no certificate: APNs "refuses"
	waitFor(t, func() bool { return ts.app.pusher.CertError() != nil })
	if h := ts.health(t); h.Status == "ok" || !strings.Contains(strings.Join(h.Issues, ";"), "APNs refused") {
		t.Fatalf("healthz before = %+v", h)
	}
	now := time.Now()
	certPEM, keyPEM := certstest.NewPushCert(testTopic, now.Add(-time.Hour), now.Add(300*24*time.Hour))
	if _, err := ts.admin.SetPushCert(t.Context(), api.PushCertRequest{CertPEM: string(certPEM), KeyPEM: string(keyPEM)}); err != nil {
		t.Fatal(err)
	}
	// The built-in release catalog's age may warn too: that is not push's.
	h := ts.health(t)
	if h.Status == "degraded" || !h.Push.Configured {
		t.Errorf("healthz right after pushcert set = %+v", h)
	}
	for _, issue := range h.Issues {
		if !strings.HasPrefix(issue, "release catalog is") {
			t.Errorf("healthz issue right after pushcert set: %s", issue)
		}
	}
}
