package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/api"
	"github.com/sundial-mdm/sundial/certs"
	"github.com/sundial-mdm/sundial/certs/certstest"
	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/mdmtest"
	"github.com/sundial-mdm/sundial/storage/bolt"
)

var (
	keyPoolOnce sync.Once
	keyPool     *mdmtest.KeyPool
)

func testKeys(t testing.TB) *mdmtest.KeyPool {
	keyPoolOnce.Do(func() {
		var err error
		if keyPool, err = mdmtest.NewKeyPool(4); err != nil {
			t.Fatal(err)
		}
	})
	return keyPool
}

// testServer is a real Sundial server (bbolt file, generated CA, TLS) on a
// loopback listener.
type testServer struct {
	t      testing.TB
	app    *app
	srv    *httptest.Server
	url    string
	hc     *http.Client
	admin  *api.Client
	cancel context.CancelFunc
	done   chan struct{}
	dir    string
}

func startTestServer(t testing.TB, dir string) *testServer {
	t.Helper()
	return startTestServerWith(t, dir, nil)
}

// startTestServerWith lets a test adjust the configuration first.
func startTestServerWith(t testing.TB, dir string, adjust func(*Config)) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "https://" + ln.Addr().String()
	cfg := Config{Listen: ln.Addr().String(), DataDir: dir, PublicURL: base, ChallengeMode: "shared",
		LogLevel: "info", LogFormat: "text", FlushInterval: 50 * time.Millisecond, ShutdownTimeout: 5 * time.Second,
		APNsURL: "https://127.0.0.1:1"}
	if adjust != nil {
		adjust(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := newApp(cfg, log, clock.System{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{t: t, app: a, url: base, cancel: cancel, done: make(chan struct{}), dir: dir}
	go func() {
		defer close(ts.done)
		if err := a.serve(ctx, ln); err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	pool := x509.NewCertPool()
	pool.AddCert(a.authority.CA())
	ts.hc = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	waitFor(t, func() bool {
		resp, err := ts.hc.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})
	key, err := os.ReadFile(filepath.Join(dir, adminKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	ts.admin = &api.Client{BaseURL: base, APIKey: strings.TrimSpace(string(key)), HTTP: ts.hc}
	t.Cleanup(ts.stop)
	return ts
}

func (ts *testServer) stop() {
	if ts.cancel == nil {
		return
	}
	ts.cancel()
	<-ts.done
	ts.app.Close()
	ts.cancel = nil
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func waitFor(t testing.TB, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (ts *testServer) newMac(t testing.TB, opts ...mdmtest.Option) *mdmtest.Device {
	t.Helper()
	d, err := mdmtest.New(append([]mdmtest.Option{mdmtest.WithKeyPool(testKeys(t)), mdmtest.WithHTTPClient(ts.hc)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (ts *testServer) enroll(t testing.TB, opts ...mdmtest.Option) *mdmtest.Device {
	t.Helper()
	d := ts.newMac(t, opts...)
	if err := d.Enroll(t.Context(), ts.hc, ts.url+"/mdm/enroll"); err != nil {
		t.Fatal(err)
	}
	return d
}

func (ts *testServer) device(t testing.TB, id string) *mdm.Device {
	t.Helper()
	d, err := ts.app.store.Device(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestEnrollmentRoundTrip(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	mac := ts.enroll(t, mdmtest.WithOS("14.6.1", "23G93"), mdmtest.WithSerialNumber("C02SUNDIAL01"))
	d := ts.device(t, mac.UDID)
	if !d.Enabled || d.CertHash == "" || d.PushMagic == "" {
		t.Fatalf("device after enrollment = %+v", d.Redacted())
	}
	sess, err := mac.Connect(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// Inventory first, then the agent's settings profile.
	if got := strings.Join(sess.RequestTypes(), " "); got != "DeviceInformation InstallProfile" {
		t.Fatalf("first connect delivered %v, want DeviceInformation and InstallProfile", got)
	}
	d = ts.device(t, mac.UDID)
	if d.OSVersion != "14.6.1" || d.BuildVersion != "23G93" || d.SerialNumber != "C02SUNDIAL01" || d.Inventory.ProductName == "" || d.Inventory.SoftwareUpdateDeviceID == "" {
		t.Errorf("inventory not stored: %+v", d.Inventory)
	}
	if d.InventoryAt.IsZero() {
		t.Error("InventoryAt not set")
	}
	// The admin API shows it, without secrets.
	list, err := ts.admin.Devices(t.Context(), "", 10)
	if err != nil || len(list.Devices) != 1 {
		t.Fatalf("Devices = %+v, %v", list, err)
	}
	if got := list.Devices[0]; got.PushMagic != "" || got.PushToken != nil || got.Model == "" {
		t.Errorf("API device = %+v", got)
	}
	cmds, err := ts.admin.Commands(t.Context(), mac.UDID)
	if err != nil || len(cmds) != 2 || cmds[0].Status != "Acknowledged" || !strings.Contains(cmds[0].Result, "QueryResponses") {
		t.Errorf("command history = %+v, %v", cmds, err)
	}
	// Bootstrap token escrow round trip, sealed at rest.
	if err := mac.SetBootstrapToken(t.Context()); err != nil {
		t.Fatal(err)
	}
	got, err := mac.GetBootstrapToken(t.Context())
	if err != nil || len(got) == 0 {
		t.Fatalf("GetBootstrapToken = %x, %v", got, err)
	}
	if raw := ts.device(t, mac.UDID).BootstrapToken; bytes.Contains(raw, got) {
		t.Error("bootstrap token stored in the clear")
	}
	// The declarative channel answers "nothing configured".
	tok, err := mac.DeclarativeManagement(t.Context(), "tokens", nil)
	if err != nil || !bytes.Contains(tok, []byte("DeclarationsToken")) {
		t.Errorf("tokens = %s, %v", tok, err)
	}
	// CheckOut disables the enrollment.
	if err := mac.CheckOut(t.Context()); err != nil {
		t.Fatal(err)
	}
	if ts.device(t, mac.UDID).Enabled {
		t.Error("device still enabled after CheckOut")
	}
}

// put sends a raw check-in or report with optional signing.
func (ts *testServer) put(t testing.TB, path, contentType string, body []byte, sig string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, ts.url+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	if sig != "" {
		req.Header.Set("Mdm-Signature", sig)
	}
	resp, err := ts.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func sign(t testing.TB, mac *mdmtest.Device, body []byte) string {
	t.Helper()
	e := mac.Enrollment()
	sig, err := mdmtest.SignMessage(body, e.Certificate, e.Key, false)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func idleBody(udid string) []byte {
	return []byte(`<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict><key>Status</key><string>Idle</string><key>UDID</key><string>` + udid + `</string></dict></plist>`)
}

func checkOutBody(udid string) []byte {
	return []byte(`<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict><key>MessageType</key><string>CheckOut</string><key>Topic</key><string>x</string><key>UDID</key><string>` + udid + `</string></dict></plist>`)
}

func TestDeviceIdentityRefused(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	a := ts.enroll(t)
	b := ts.enroll(t)
	for _, m := range []*mdmtest.Device{a, b} {
		if _, err := m.Connect(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	// A command for B, so a forged report would have something to change.
	cmd, _ := mdm.NewCommand("ProfileList", nil)
	if _, err := ts.admin.Enqueue(t.Context(), b.UDID, cmd.Raw); err != nil {
		t.Fatal(err)
	}
	otherCA := certstest.NewAuthority(t, time.Now())
	strangerCert, strangerKey := certstest.NewIdentity(t, otherCA, "Sundial device identity", time.Now())
	strangerSig, err := certs.SignMdmSignature(checkOutBody(b.UDID), strangerCert, strangerKey)
	if err != nil {
		t.Fatal(err)
	}
	ack := []byte(`<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict><key>Status</key><string>Acknowledged</string><key>CommandUUID</key><string>` + cmd.UUID + `</string><key>UDID</key><string>` + b.UDID + `</string></dict></plist>`)
	tests := []struct {
		name, path, ct string
		body           []byte
		sig            string
	}{
		{"A signs a check-out for B", "/mdm/checkin", checkinCT, checkOutBody(b.UDID), sign(t, a, checkOutBody(b.UDID))},
		{"A signs a report for B", "/mdm/connect", "application/x-apple-aspen-mdm", ack, sign(t, a, ack)},
		{"unsigned check-out", "/mdm/checkin", checkinCT, checkOutBody(b.UDID), ""},
		{"unsigned report", "/mdm/connect", "application/x-apple-aspen-mdm", ack, ""},
		{"certificate from another CA", "/mdm/checkin", checkinCT, checkOutBody(b.UDID), strangerSig},
		{"signature over another body", "/mdm/connect", "application/x-apple-aspen-mdm", ack, sign(t, b, idleBody(b.UDID))},
		{"garbage signature", "/mdm/connect", "application/x-apple-aspen-mdm", ack, "bm90IGEgc2lnbmF0dXJl"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if status, _ := ts.put(t, tc.path, tc.ct, tc.body, tc.sig); status != http.StatusUnauthorized {
				t.Errorf("status = %d, want 401", status)
			}
		})
	}
	if !ts.device(t, b.UDID).Enabled {
		t.Error("B was checked out by a forged request")
	}
	rec, err := ts.app.store.Command(t.Context(), b.UDID, cmd.UUID)
	if err != nil || rec.Status != mdm.StatusQueued || len(rec.History) != 1 {
		t.Errorf("B's command changed by a forged report: %+v, %v", rec, err)
	}
	// Authenticate with A's certificate for B's UDID is refused too.
	auth := []byte(`<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict><key>MessageType</key><string>Authenticate</string><key>Topic</key><string>` + a.Enrollment().Topic + `</string><key>UDID</key><string>` + b.UDID + `</string></dict></plist>`)
	if status, _ := ts.put(t, "/mdm/checkin", checkinCT, auth, sign(t, a, auth)); status != http.StatusUnauthorized {
		t.Errorf("Authenticate with another device's certificate: %d, want 401", status)
	}
	if ts.device(t, b.UDID).CertHash != certs.HashCert(b.Enrollment().Certificate) {
		t.Error("B's certificate binding changed")
	}
	// B itself still works.
	sess, err := b.Connect(t.Context())
	if err != nil || len(sess.Commands) != 1 {
		t.Errorf("B's own connect = %+v, %v", sess, err)
	}
}

func TestBadBodiesChangeNothing(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	mac := ts.enroll(t)
	before := ts.device(t, mac.UDID)
	huge := bytes.Repeat([]byte("A"), mdm.MaxBodySize+1)
	tests := []struct {
		name string
		path string
		body []byte
		want int
	}{
		{"malformed check-in", "/mdm/checkin", []byte("<plist><dict><key>MessageType</key>"), http.StatusBadRequest},
		{"malformed report", "/mdm/connect", []byte("<?xml version=\"1.0\"?><plist><dict><key>Status"), http.StatusBadRequest},
		{"binary check-in", "/mdm/checkin", []byte("bplist00\xd1\x01\x02_\x10\x0bMessageTypeXCheckOut\x08\x0b\x19\x00"), http.StatusUnsupportedMediaType},
		{"binary report", "/mdm/connect", []byte("bplist00\xd0\x08\x00\x00"), http.StatusUnsupportedMediaType},
		{"check-in over the cap", "/mdm/checkin", huge, http.StatusRequestEntityTooLarge},
		{"report over the cap", "/mdm/connect", huge, http.StatusRequestEntityTooLarge},
		{"empty report", "/mdm/connect", nil, http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ct := "application/x-apple-aspen-mdm"
			if tc.path == "/mdm/checkin" {
				ct = checkinCT
			}
			sig := ""
			if len(tc.body) <= mdm.MaxBodySize {
				sig = sign(t, mac, tc.body)
			}
			if status, _ := ts.put(t, tc.path, ct, tc.body, sig); status != tc.want {
				t.Errorf("status = %d, want %d", status, tc.want)
			}
		})
	}
	after := ts.device(t, mac.UDID)
	after.LastSeen = before.LastSeen
	if !equalJSON(t, before, after) {
		t.Errorf("device changed:\nbefore %+v\nafter  %+v", before.Redacted(), after.Redacted())
	}
	// The server keeps serving.
	if sess, err := mac.Connect(t.Context()); err != nil || len(sess.Commands) != 2 {
		t.Errorf("connect after bad input = %s, %v", statuses(sess), err)
	}
	// Wrong method.
	resp, err := ts.hc.Get(ts.url + "/mdm/connect")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /mdm/connect = %d", resp.StatusCode)
	}
}

func TestNotNowThenIdleThenAcknowledged(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	mac := ts.enroll(t)
	if _, err := mac.Connect(t.Context()); err != nil { // inventory
		t.Fatal(err)
	}
	a, _ := mdm.NewCommand("ProfileList", nil)
	b, _ := mdm.NewCommand("CertificateList", nil)
	for _, c := range []*mdm.Command{a, b} {
		if _, err := ts.admin.Enqueue(t.Context(), mac.UDID, c.Raw); err != nil {
			t.Fatal(err)
		}
	}
	mac.AnswerNotNow("ProfileList", 1)
	sess, err := mac.Connect(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// A is NotNow'd; B must not starve behind it.
	if got := statuses(sess); got != "ProfileList:NotNow CertificateList:Error" { // not A twice in one session
		t.Fatalf("first session = %s", got)
	}
	sess, err = mac.Connect(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(sess); got != "ProfileList:Acknowledged" {
		t.Fatalf("second session = %s, want ProfileList delivered again", got)
	}
	// A duplicate Acknowledged report is harmless.
	dup := []byte(`<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict><key>Status</key><string>Acknowledged</string><key>CommandUUID</key><string>` + a.UUID + `</string><key>UDID</key><string>` + mac.UDID + `</string></dict></plist>`)
	if status, body := ts.put(t, "/mdm/connect", "application/x-apple-aspen-mdm", dup, sign(t, mac, dup)); status != 200 || len(body) != 0 {
		t.Errorf("duplicate report = %d %q", status, body)
	}
	rec, err := ts.app.store.Command(t.Context(), mac.UDID, a.UUID)
	if err != nil {
		t.Fatal(err)
	}
	var hist []string
	acks := 0
	for _, h := range rec.History {
		hist = append(hist, h.Status)
		if h.Status == "Acknowledged" {
			acks++
		}
	}
	if acks != 1 || rec.Status != "Acknowledged" || strings.Join(hist, ",") != "Queued,NotNow,Acknowledged" {
		t.Errorf("history = %v", hist)
	}
	// The unknown command came back as Error with its chain, and stays done.
	recB, _ := ts.app.store.Command(t.Context(), mac.UDID, b.UUID)
	if recB.Status != "Error" || len(recB.ErrorChain) == 0 || recB.ErrorChain[0].ErrorCode != 12021 {
		t.Errorf("B = %+v", recB)
	}
	if sess, _ := mac.Connect(t.Context()); len(sess.Commands) != 0 {
		t.Errorf("an Error'd command was retried: %s", statuses(sess))
	}
}

func statuses(s *mdmtest.Session) string {
	var parts []string
	for _, c := range s.Commands {
		parts = append(parts, c.RequestType+":"+c.Status)
	}
	return strings.Join(parts, " ")
}

func TestSecondServerOnSameDataDirFailsFast(t *testing.T) {
	dir := t.TempDir()
	startTestServer(t, dir)
	cfg := Config{Listen: "127.0.0.1:0", DataDir: dir, ChallengeMode: "shared", LogFormat: "text", FlushInterval: time.Second, ShutdownTimeout: time.Second, APNsURL: "https://127.0.0.1:1"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := newApp(cfg, slog.New(slog.DiscardHandler), clock.System{})
	if err == nil || !strings.Contains(err.Error(), "another") {
		t.Fatalf("second server err = %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Error("second server took too long to fail")
	}
}

func TestAdminAPIAuth(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	mac := ts.enroll(t)
	for _, key := range []string{"", "sdl_wrong"} {
		c := &api.Client{BaseURL: ts.url, APIKey: key, HTTP: ts.hc}
		_, err := c.Devices(t.Context(), "", 1)
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != api.CodeUnauthorized {
			t.Errorf("key %q: err = %v", key, err)
		}
	}
	for _, body := range []string{"", "not a plist", "<plist><dict></dict></plist>"} {
		_, err := ts.admin.Enqueue(t.Context(), mac.UDID, []byte(body))
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != api.CodeInvalid {
			t.Errorf("enqueue %q: err = %v", body, err)
		}
	}
	cmd, _ := mdm.NewCommand("ProfileList", nil)
	_, err := ts.admin.Enqueue(t.Context(), "no-such-device", cmd.Raw)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.CodeNotFound {
		t.Errorf("enqueue to unknown device: %v", err)
	}
	if recs, _ := ts.app.store.Commands(t.Context(), mac.UDID); len(recs) != 2 { // inventory and agent settings
		t.Errorf("bad enqueues stored something: %d commands", len(recs))
	}
}

func TestInventoryRefreshedDaily(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	mac := ts.enroll(t)
	if sess, err := mac.Connect(t.Context()); err != nil || len(sess.Commands) != 2 {
		t.Fatalf("first connect = %s, %v", statuses(sess), err)
	}
	// Not due yet: nothing is queued.
	if n, err := ts.app.svc.RefreshInventory(t.Context()); err != nil || n != 0 {
		t.Fatalf("refresh right after enrollment queued %d, %v", n, err)
	}
	// A day later the device is due again. (The server's own loop refreshes
	// too, so the interval goes back to a day right after.)
	ts.app.svc.SetInventoryInterval(0)
	n, err := ts.app.svc.RefreshInventory(t.Context())
	ts.app.svc.SetInventoryInterval(24 * time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("refresh queued %d, %v; want 1", n, err)
	}
	sess, err := mac.Connect(t.Context())
	if err != nil || len(sess.Commands) == 0 {
		t.Fatalf("connect after refresh = %s, %v", statuses(sess), err)
	}
	for _, c := range sess.Commands {
		if c.RequestType != "DeviceInformation" {
			t.Errorf("connect after refresh = %s", statuses(sess))
		}
	}
	if n, _ := ts.app.svc.RefreshInventory(t.Context()); n != 0 {
		t.Errorf("refresh right after a refresh queued %d", n)
	}
}

func TestCLIAgainstLiveServer(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	mac := ts.enroll(t)
	if _, err := mac.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SUNDIAL_URL": ts.url, "SUNDIAL_API_KEY": ts.admin.APIKey}
	getenv := func(k string) string { return env[k] }
	cli := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(t.Context(), append(args, "--data-dir", ts.dir), getenv, &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, out, errs := cli("devices", "list"); code != 0 || !strings.Contains(out, mac.UDID) || !strings.Contains(out, mac.OSVersion()) {
		t.Errorf("devices list = %d %q %q", code, out, errs)
	}
	if code, out, _ := cli("devices", "list", "-o", "json"); code != 0 || !strings.Contains(out, `"serial_number"`) || strings.Contains(out, "push_magic") {
		t.Errorf("devices list -o json = %d %q", code, out)
	}
	cmdFile := filepath.Join(t.TempDir(), "cmd.plist")
	c, _ := mdm.NewCommand("ProfileList", nil)
	os.WriteFile(cmdFile, c.Raw, 0o600)
	if code, out, errs := cli("commands", "enqueue", mac.UDID, cmdFile); code != 0 || !strings.Contains(out, c.UUID) {
		t.Errorf("enqueue = %d %q %q", code, out, errs)
	}
	if code, _, _ := cli("commands", "enqueue", "nope", cmdFile); code != exitNotFound {
		t.Errorf("enqueue to unknown device exit = %d, want %d", code, exitNotFound)
	}
	os.WriteFile(cmdFile, []byte("not a plist"), 0o600)
	if code, _, _ := cli("commands", "enqueue", mac.UDID, cmdFile); code != exitUsage {
		t.Errorf("enqueue of garbage exit = %d, want %d", code, exitUsage)
	}
	if code, out, _ := cli("commands", "list", mac.UDID); code != 0 || !strings.Contains(out, "DeviceInformation") || !strings.Contains(out, "Queued") {
		t.Errorf("commands list = %d %q", code, out)
	}
	env["SUNDIAL_API_KEY"] = "sdl_wrong"
	if code, _, _ := cli("devices", "list"); code != exitAuth {
		t.Errorf("wrong key exit = %d, want %d", code, exitAuth)
	}
	env["SUNDIAL_API_KEY"] = ts.admin.APIKey
	if code, _, _ := cli("devices", "list", "--bogus"); code != exitUsage {
		t.Errorf("bad flag exit = %d", code)
	}
	// Hot backup: a consistent database file that opens and holds the device.
	backup := filepath.Join(t.TempDir(), "backup.db")
	if code, out, errs := cli("backup", "--out", backup); code != 0 {
		t.Fatalf("backup = %d %q %q", code, out, errs)
	}
	b, err := bolt.Open(backup, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if d, err := b.Device(t.Context(), mac.UDID); err != nil || d.SerialNumber == "" {
		t.Errorf("device in backup = %+v, %v", d, err)
	}
}
