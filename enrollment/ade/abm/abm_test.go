package abm_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/enrollment/ade/abm"
	"github.com/sundial-mdm/sundial/enrollment/ade/depmock"
	"github.com/sundial-mdm/sundial/internal/seal"
	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/bolt"
)

// fakeClock is a settable clock shared by the mock and the connector.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	clock *fakeClock
	mock  *depmock.Mock
	gate  *countingFail
	srv   *httptest.Server
	store *bolt.Store
	conn  *abm.Connector
}

func newEnv(t *testing.T) *env {
	t.Helper()
	clk := &fakeClock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	mock := depmock.New(depmock.WithClock(clk))
	gate := &countingFail{next: mock}
	srv := httptest.NewTLSServer(gate)
	t.Cleanup(srv.Close)
	store, err := bolt.Open(filepath.Join(t.TempDir(), "sundial.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	sealer, err := seal.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	conn := abm.New(store, sealer, clk, srv.Client())
	conn.SetProfileSettings(abm.ProfileSettings{EnrollURL: "https://mdm.example.com/mdm/enroll", SkipSetupItems: []string{"Siri"}})
	return &env{clock: clk, mock: mock, gate: gate, srv: srv, store: store, conn: conn}
}

// connect makes the keypair, has the mock issue a token for it, uploads it.
func (e *env) connect(t *testing.T, name string) {
	t.Helper()
	certPEM, err := e.conn.Keypair(context.Background(), name, e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	p7m, err := e.mock.ServerToken(parsePEM(t, certPEM))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.conn.UploadToken(context.Background(), name, p7m); err != nil {
		t.Fatal(err)
	}
}

func parsePEM(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("no PEM")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTokenUpload(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	certPEM, err := e.conn.Keypair(ctx, "main", e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := e.conn.Keypair(ctx, "main", e.srv.URL)
	if string(again) != string(certPEM) {
		t.Error("a second keypair call replaced the key")
	}
	// A token encrypted to another server's certificate does not decrypt.
	otherPEM, err := e.conn.Keypair(ctx, "other", e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := e.mock.ServerToken(parsePEM(t, otherPEM))
	if err != nil {
		t.Fatal(err)
	}
	for name, file := range map[string][]byte{
		"other server's token": foreign,
		"corrupt":              []byte("Content-Type: application/pkcs7-mime\r\n\r\nbm90IGEgY21zIG1lc3NhZ2U=\r\n"),
		"empty":                nil,
		"not mime":             []byte("\x00\x01garbage"),
	} {
		if _, err := e.conn.UploadToken(ctx, "main", file); !errors.Is(err, abm.ErrBadToken) {
			t.Errorf("%s: err = %v, want ErrBadToken", name, err)
		}
	}
	srv, _ := e.store.DEPServer(ctx, "main")
	if len(srv.SealedTokens) != 0 || !srv.TokenExpiry.IsZero() {
		t.Fatalf("refused tokens stored something: %+v", srv)
	}
	if _, err := e.conn.UploadToken(ctx, "nokey", foreign); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("token for unknown server err = %v", err)
	}
	good, _ := e.mock.ServerToken(parsePEM(t, certPEM))
	srv, err = e.conn.UploadToken(ctx, "main", good)
	if err != nil {
		t.Fatal(err)
	}
	if !srv.TokenExpiry.Equal(e.mock.Tokens().AccessTokenExpiry) {
		t.Errorf("expiry %v, want %v", srv.TokenExpiry, e.mock.Tokens().AccessTokenExpiry)
	}
	if srv, err = e.conn.RefreshAccount(ctx, "main"); err != nil || srv.OrgName != "Example Org" {
		t.Errorf("account = %+v, %v", srv, err)
	}
}

func TestFirstSyncThenCursorSync(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.connect(t, "main")
	serials := e.mock.Seed("C02F", 2500) // three fetch pages
	if err := e.store.ApplyADEPage(ctx, storage.ADEPage{Server: "main", Cursor: ""}, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	res, err := e.conn.Sync(ctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != 2500 || res.Assigned != 2500 {
		t.Errorf("first sync = %+v", res)
	}
	all, _ := e.store.ADEDevices(ctx, "", 0)
	if len(all) != 2500 {
		t.Fatalf("%d devices stored, want 2500", len(all))
	}
	d, _ := e.store.ADEDevice(ctx, serials[7])
	if d.AssignResult != "SUCCESS" || d.Model == "" || d.DeviceAssignedDate.IsZero() {
		t.Errorf("device = %+v", d)
	}
	if md, _ := e.mock.Device(serials[7]); md.ProfileStatus != "assigned" || md.ProfileUUID == "" {
		t.Errorf("mock device not assigned: %+v", md)
	}

	// ABM changes: one added, one released, one moved to a group.
	e.mock.Add(depmock.Device{SerialNumber: "C02NEW0001", Model: "Mac mini", OS: "OSX"})
	e.mock.Delete(serials[3])
	e.mock.FailAssign("C02NEW0002", "FAILED")
	e.mock.Add(depmock.Device{SerialNumber: "C02NEW0002", Model: "Mac mini", OS: "OSX"})
	res, err = e.conn.Sync(ctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.ADEDevice(ctx, serials[3]); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("released serial still stored: %v", err)
	}
	if d, err := e.store.ADEDevice(ctx, "C02NEW0001"); err != nil || d.AssignResult != "SUCCESS" {
		t.Errorf("new serial = %+v, %v", d, err)
	}
	if d, _ := e.store.ADEDevice(ctx, "C02NEW0002"); d == nil || d.AssignResult != "FAILED" {
		t.Errorf("failed assignment not stored: %+v", d)
	}
	if res.Deleted != 1 || res.Added != 2 {
		t.Errorf("second sync = %+v", res)
	}
	// A group of its own: the serial is re-assigned to that group's profile.
	d, err = e.conn.MoveSerial(ctx, serials[9], "pilot")
	if err != nil || d.Group != "pilot" || d.AssignResult != "SUCCESS" {
		t.Fatalf("move = %+v, %v", d, err)
	}
	srv, _ := e.store.DEPServer(ctx, "main")
	pilot, def := srv.Profiles["pilot"].UUID, srv.Profiles[""].UUID
	if pilot == "" || pilot == def {
		t.Fatalf("profiles = %+v", srv.Profiles)
	}
	if md, _ := e.mock.Device(serials[9]); md.ProfileUUID != pilot {
		t.Errorf("moved serial has profile %s, want %s", md.ProfileUUID, pilot)
	}
	p, ok := e.mock.Profile(pilot)
	if !ok || !p.IsSupervised || !p.IsMandatory || p.IsMDMRemovable || !p.AwaitDeviceConfigured || p.URL != "https://mdm.example.com/mdm/enroll" {
		t.Errorf("profile = %+v", p)
	}
}

// A sync cut off mid-fetch resumes from the stored cursor without losing or
// duplicating a device.
func TestSyncInterruptedMidPageResumes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.connect(t, "main")
	e.mock.Seed("C02I", 3500)
	// The third page fails: two pages are stored with their cursor.
	e.gate.failAfter("/server/devices", 2)
	if _, err := e.conn.Sync(ctx, "main"); err == nil {
		t.Fatal("sync with a failing page succeeded")
	}
	got, _ := e.store.ADEDevices(ctx, "", 0)
	if len(got) != 2000 {
		t.Fatalf("after interruption %d devices, want the 2 stored pages (2000)", len(got))
	}
	srv, _ := e.store.DEPServer(ctx, "main")
	if srv.LastError == "" || !srv.RetryAt.After(e.clock.Now()) {
		t.Errorf("failure not recorded with backoff: %+v", srv)
	}
	if _, err := e.conn.Sync(ctx, "main"); !errors.Is(err, abm.ErrBackoff) {
		t.Errorf("sync during backoff err = %v", err)
	}
	e.clock.Add(2 * time.Minute)
	before := e.mock.Stats().Fetches
	if _, err := e.conn.Sync(ctx, "main"); err != nil {
		t.Fatal(err)
	}
	if n := e.mock.Stats().Fetches - before; n != 2 {
		t.Errorf("resume fetched %d pages, want the 2 missing ones", n)
	}
	got, _ = e.store.ADEDevices(ctx, "", 0)
	if len(got) != 3500 {
		t.Errorf("after resume %d devices, want 3500", len(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i].Serial == got[i-1].Serial {
			t.Fatalf("duplicate %s", got[i].Serial)
		}
	}
}

// countingFail passes requests to the mock, but can fail the one request
// to path that comes after `after` others, as a dropped connection would.
type countingFail struct {
	mu    sync.Mutex
	next  http.Handler
	path  string
	after int
	seen  int
}

func (c *countingFail) failAfter(path string, n int) {
	c.mu.Lock()
	c.path, c.after, c.seen = path, n, 0
	c.mu.Unlock()
}

func (c *countingFail) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	fail := false
	if c.path != "" && r.URL.Path == c.path {
		c.seen++
		fail = c.seen == c.after+1
	}
	c.mu.Unlock()
	if fail {
		http.Error(w, "connection reset by test", http.StatusBadGateway)
		return
	}
	c.next.ServeHTTP(w, r)
}

func TestCursorExpiredRestartsFetch(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.connect(t, "main")
	e.mock.Seed("C02E", 50)
	if _, err := e.conn.Sync(ctx, "main"); err != nil {
		t.Fatal(err)
	}
	e.mock.Add(depmock.Device{SerialNumber: "C02LATE001", Model: "iMac", OS: "OSX"})
	e.clock.Add(8 * 24 * time.Hour) // the cursor is older than 7 days
	res, err := e.conn.Sync(ctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	if !res.Restarted {
		t.Errorf("expired cursor did not restart the fetch: %+v", res)
	}
	all, _ := e.store.ADEDevices(ctx, "", 0)
	if len(all) != 51 {
		t.Errorf("%d devices after refetch, want 51", len(all))
	}
}

func TestExpiredTokenAndRateLimit(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.connect(t, "main")
	e.mock.Seed("C02T", 10)
	e.mock.ExpireToken()
	_, err := e.conn.Sync(ctx, "main")
	if !abm.IsTokenExpired(err) {
		t.Fatalf("expired token err = %v", err)
	}
	e.clock.Add(time.Hour)
	e.mock.RateLimit("/session", 1, time.Minute)
	if _, err := e.conn.Sync(ctx, "main"); err == nil {
		t.Fatal("rate-limited sync succeeded")
	}
	srv, _ := e.store.DEPServer(ctx, "main")
	if srv.Failures != 2 || srv.RetryAt.Sub(e.clock.Now()) != 2*time.Minute {
		t.Errorf("backoff after 2 failures = %d, %v", srv.Failures, srv.RetryAt.Sub(e.clock.Now()))
	}
}

// A page whose profile assignment ABM refuses is not stored: the next run
// fetches it again and assigns its devices.
func TestAssignmentFailureRetriesThePage(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.connect(t, "main")
	e.mock.Seed("C02R", 30)
	e.mock.Fail("/profile/devices", 1, http.StatusInternalServerError, `"INTERNAL_ERROR"`, nil)
	if _, err := e.conn.Sync(ctx, "main"); err == nil {
		t.Fatal("sync with a refused assignment succeeded")
	}
	if all, _ := e.store.ADEDevices(ctx, "", 0); len(all) != 0 {
		t.Fatalf("%d devices stored from a page whose assignment failed", len(all))
	}
	e.clock.Add(2 * time.Minute)
	res, err := e.conn.Sync(ctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	all, _ := e.store.ADEDevices(ctx, "", 0)
	if len(all) != 30 || res.Assigned != 30 {
		t.Fatalf("after retry %d devices, %d assigned", len(all), res.Assigned)
	}
	for _, d := range all {
		if d.AssignResult != "SUCCESS" {
			t.Errorf("%s assign result %q", d.Serial, d.AssignResult)
		}
	}
}
