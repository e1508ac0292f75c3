package main

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/enrollment/ade/depmock"
	"github.com/sundial-mdm/sundial/mdm/mdmtest"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// startADEServer starts a server trusting a test "Apple" root for ADE.
func startADEServer(t testing.TB) (*testServer, *mdmtest.AppleDeviceCA) {
	t.Helper()
	apple, err := mdmtest.NewAppleDeviceCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "apple-root.pem")
	if err := os.WriteFile(root, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: apple.Root.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := startTestServerWith(t, t.TempDir(), func(c *Config) { c.ADEAppleRoot = root })
	return ts, apple
}

// abmAssign stores serials as ABM assigned them to this server, in group.
func (ts *testServer) abmAssign(t testing.TB, group string, serials ...string) {
	t.Helper()
	p := storage.ADEPage{Server: "main", Cursor: "seed"}
	for _, s := range serials {
		p.Upsert = append(p.Upsert, storage.ADEDevice{Serial: s, Model: "MacBook Air", OS: "OSX", OpType: "added"})
	}
	if err := ts.app.store.ApplyADEPage(t.Context(), p, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, s := range serials {
		if err := ts.app.store.SetADEGroup(t.Context(), s, group, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestADEEnrollmentHeldUntilUpdatedThenConfigured walks a Mac through
// Setup Assistant: held below its group's minimum, updates, enrolls with an
// identity bound to its UDID, is configured and released, and is
// supervised.
func TestADEEnrollmentHeldUntilUpdatedThenConfigured(t *testing.T) {
	ts, apple := startADEServer(t)
	ctx := t.Context()
	if _, err := ts.admin.CreateGroup(ctx, "pilot", "Pilot"); err != nil {
		t.Fatal(err)
	}
	date := time.Now().AddDate(0, 1, 0).Format("2006-01-02")
	if _, err := ts.admin.SetPolicy(ctx, "pilot", softwareupdate.Policy{Mode: softwareupdate.ModeManual,
		MinimumVersion: "15.7.9", Date: date, TimeOfDay: "17:00", TimeZone: "Europe/Berlin"}); err != nil {
		t.Fatal(err)
	}
	ts.abmAssign(t, "pilot", "C02ADEOLD01", "C02VENTURA1")

	mac := ts.newMac(t, mdmtest.WithSerialNumber("C02ADEOLD01"), mdmtest.WithOS("15.3.1", "24D70"),
		mdmtest.WithSupervised(false), mdmtest.WithCatalog(mdmtest.MinorUpdate("15.7.9", "24G830")))
	if err := mac.EnrollADE(ctx, ts.hc, ts.url+"/mdm/enroll", apple); err != nil {
		t.Fatal(err)
	}
	if have := mac.SetupUpdates(); !slices.Equal(have, []string{"15.7.9"}) {
		t.Errorf("setup updates = %v, want [15.7.9]", have)
	}
	entries, err := ts.admin.Audit(ctx, 0, 100)
	if err != nil || !slices.ContainsFunc(entries, func(e scheduler.AuditEntry) bool {
		return e.Action == "ade.setup.update_required" && e.Subject == "C02ADEOLD01"
	}) {
		t.Errorf("hold not audited: %+v, %v", entries, err)
	}
	if !mac.AwaitingConfiguration() {
		t.Fatal("mac is not waiting in setup assistant after enrollment")
	}
	sess, err := mac.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	types := sess.RequestTypes()
	if len(types) == 0 || types[len(types)-1] != "DeviceConfigured" || !slices.Contains(types, "DeviceInformation") ||
		!slices.Contains(types, "InstallProfile") {
		t.Errorf("setup commands = %v, want inventory and agent settings, then DeviceConfigured last", types)
	}
	if mac.AwaitingConfiguration() {
		t.Error("mac still waiting in setup assistant")
	}
	dev := ts.device(t, mac.UDID)
	if !dev.Inventory.IsSupervised || dev.Inventory.OSVersion != "15.7.9" {
		t.Errorf("inventory = %+v, want supervised on 15.7.9", dev.Inventory)
	}
	abm, err := ts.app.store.ADEDevice(ctx, "C02ADEOLD01")
	if err != nil || abm.EnrollmentID != mac.UDID {
		t.Errorf("abm record = %+v, %v; want joined to %s", abm, err, mac.UDID)
	}
	groups, err := ts.app.store.GroupsOf(ctx, []string{mac.UDID})
	if err != nil || groups[0] != "pilot" {
		t.Errorf("group = %v, %v; want pilot", groups, err)
	}

	// macOS 13 sends no OS_VERSION: it enrolls and is enforced afterwards.
	ventura := ts.newMac(t, mdmtest.WithSerialNumber("C02VENTURA1"), mdmtest.WithOS("13.7.8", "22H730"))
	if err := ventura.EnrollADE(ctx, ts.hc, ts.url+"/mdm/enroll", apple); err != nil {
		t.Fatal(err)
	}
	if len(ventura.SetupUpdates()) != 0 {
		t.Errorf("macOS 13 updated at setup: %v", ventura.SetupUpdates())
	}
}

// TestADEBoundIdentityRefusesOtherUDID: the identity issued for one Mac's
// UDID cannot Authenticate another UDID, and nothing is stored for it.
func TestADEBoundIdentityRefusesOtherUDID(t *testing.T) {
	ts, apple := startADEServer(t)
	ts.abmAssign(t, "", "C02BOUND001")
	mac := ts.newMac(t, mdmtest.WithSerialNumber("C02BOUND001"))
	if err := mac.EnrollADE(t.Context(), ts.hc, ts.url+"/mdm/enroll", apple); err != nil {
		t.Fatal(err)
	}
	e := mac.Enrollment()
	const other = "00008103-0000DEADBEEF0001"
	body := []byte(`<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict>` +
		`<key>MessageType</key><string>Authenticate</string><key>Topic</key><string>` + e.Topic + `</string>` +
		`<key>UDID</key><string>` + other + `</string><key>SerialNumber</key><string>C02OTHER</string></dict></plist>`)
	sig, err := mdmtest.SignMessage(body, e.Certificate, e.Key, false)
	if err != nil {
		t.Fatal(err)
	}
	status, _ := ts.put(t, "/mdm/checkin", checkinCT, body, sig)
	if status != http.StatusUnauthorized {
		t.Errorf("authenticate of another udid with a bound identity = %d, want 401", status)
	}
	if _, err := ts.app.store.Device(t.Context(), other); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("refused authenticate stored a device: %v", err)
	}
	// The Mac itself still checks in.
	if err := mac.Authenticate(t.Context()); err != nil {
		t.Errorf("own udid refused: %v", err)
	}
}

// TestADEEnrollRefusedWithoutAppleRoot: ADE stays off until an admin
// provides Apple's root; GET keeps serving the downloaded profile.
func TestADEEnrollRefusedWithoutAppleRoot(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	resp, err := ts.hc.Post(ts.url+"/mdm/enroll", mdmtest.ContentTypeMachineInfo, bytes.NewReader([]byte("x")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("POST without ADE root = %d, want 503", resp.StatusCode)
	}
	ts.enroll(t) // GET still works
}

// TestDEPConnectSyncAssignEnroll drives the ABM connection end to end over
// real HTTP: the CLI makes the keypair, the mock issues a server token for
// it, the token is uploaded (a foreign one is refused and stores nothing),
// the devices sync and get their group's profile, a serial moves group, a
// synced Mac enrolls through ADE and joins its ABM record, /healthz warns
// about the token's expiry, and every change is audited.
func TestDEPConnectSyncAssignEnroll(t *testing.T) {
	mock := depmock.New(depmock.WithTokens(depmock.Tokens{ConsumerKey: "CK_e2e", ConsumerSecret: "CS", AccessToken: "AT_e2e",
		AccessSecret: "AS", AccessTokenExpiry: time.Now().Add(20 * 24 * time.Hour).UTC().Truncate(time.Second)}))
	serials := mock.Seed("C02E2E", 5)
	ms := httptest.NewTLSServer(mock)
	defer ms.Close()
	dir := t.TempDir()
	mockCA := filepath.Join(dir, "mock-ca.pem")
	if err := os.WriteFile(mockCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ms.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	apple, err := mdmtest.NewAppleDeviceCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "apple-root.pem")
	os.WriteFile(root, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: apple.Root.Raw}), 0o600)
	ts := startTestServerWith(t, t.TempDir(), func(c *Config) { c.ADEAppleRoot, c.DEPCA = root, mockCA })

	env := map[string]string{"SUNDIAL_URL": ts.url, "SUNDIAL_API_KEY": ts.admin.APIKey}
	cli := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(t.Context(), append(args, "--data-dir", ts.dir), func(k string) string { return env[k] }, &out, &errb)
		return code, out.String(), errb.String()
	}
	certFile := filepath.Join(dir, "cert.pem")
	if code, out, errs := cli("dep", "keypair", "main", "--base-url", ms.URL, "--out", certFile); code != 0 {
		t.Fatalf("keypair = %d %q %q", code, out, errs)
	}
	if code, _, _ := cli("dep", "keypair", "bad name!"); code != exitUsage {
		t.Errorf("keypair with a bad name exit = %d", code)
	}
	certs, err := loadPEMCerts(certFile)
	if err != nil {
		t.Fatal(err)
	}
	// A token made for another keypair does not decrypt: exit 2, nothing stored.
	if code, _, _ := cli("dep", "keypair", "other", "--base-url", ms.URL, "--out", filepath.Join(dir, "other.pem")); code != 0 {
		t.Fatal("second keypair failed")
	}
	other, _ := loadPEMCerts(filepath.Join(dir, "other.pem"))
	foreign, _ := mock.ServerToken(other[0])
	tokenFile := filepath.Join(dir, "token.p7m")
	os.WriteFile(tokenFile, foreign, 0o600)
	if code, _, errs := cli("dep", "token", "upload", "main", tokenFile); code != exitUsage || !strings.Contains(errs, "does not decrypt") {
		t.Errorf("foreign token = %d %q", code, errs)
	}
	if srv, _ := ts.app.store.DEPServer(t.Context(), "main"); len(srv.SealedTokens) != 0 {
		t.Fatal("a refused token was stored")
	}
	good, _ := mock.ServerToken(certs[0])
	os.WriteFile(tokenFile, good, 0o600)
	if code, out, errs := cli("dep", "token", "upload", "main", tokenFile); code != 0 || !strings.Contains(out, "Example Org") {
		t.Fatalf("token upload = %d %q %q", code, out, errs)
	}
	if code, out, errs := cli("dep", "sync", "main"); code != 0 || !strings.Contains(out, "5 added") {
		t.Fatalf("sync = %d %q %q", code, out, errs)
	}
	code, out, _ := cli("dep", "devices", "-o", "json")
	var list struct{ Devices []storage.ADEDevice }
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list.Devices) != 5 || list.Devices[0].AssignResult != "SUCCESS" {
		t.Fatalf("devices = %d %s", code, out)
	}
	if code, out, _ := cli("dep", "devices"); code != 0 || !strings.Contains(out, serials[0]) || !strings.Contains(out, "SUCCESS") {
		t.Errorf("devices table = %q", out)
	}
	if _, err := ts.admin.CreateGroup(t.Context(), "pilot", "Pilot"); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := cli("dep", "move", serials[1], "pilot"); code != 0 || !strings.Contains(out, "SUCCESS") {
		t.Errorf("move = %d %q %q", code, out, errs)
	}
	if code, _, _ := cli("dep", "move", serials[1], "nosuchgroup"); code != exitNotFound {
		t.Errorf("move to unknown group exit = %d", code)
	}
	if code, _, _ := cli("dep", "move", "NOTASERIAL", "pilot"); code != exitNotFound {
		t.Errorf("move of unknown serial exit = %d", code)
	}

	// The Mac of a synced serial enrolls through ADE and lands in its group.
	mac := ts.newMac(t, mdmtest.WithSerialNumber(serials[1]), mdmtest.WithOS("15.7.9", "24G830"))
	if err := mac.EnrollADE(t.Context(), ts.hc, ts.url+"/mdm/enroll", apple); err != nil {
		t.Fatal(err)
	}
	if d, _ := ts.app.store.ADEDevice(t.Context(), serials[1]); d.EnrollmentID != mac.UDID || d.Group != "pilot" {
		t.Errorf("abm record after enrollment = %+v", d)
	}
	if g, _ := ts.app.store.GroupsOf(t.Context(), []string{mac.UDID}); g[0] != "pilot" {
		t.Errorf("enrolled mac in group %v", g)
	}

	// The token expires in 20 days: /healthz warns.
	resp, err := ts.getKeyed("/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Status string
		Issues []string
	}
	json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if h.Status != "warn" || !slices.ContainsFunc(h.Issues, func(s string) bool { return strings.Contains(s, "abm server main: server token expires in") }) {
		t.Errorf("healthz = %+v", h)
	}
	if code, out, _ := cli("dep", "show"); code != 0 || !strings.Contains(out, "Example Org") || !strings.Contains(out, "days") {
		t.Errorf("show = %q", out)
	}
	entries, err := ts.admin.Audit(t.Context(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Action)
	}
	for _, want := range []string{"dep.keypair", "dep.token.upload", "dep.device.group"} {
		if !slices.Contains(actions, want) {
			t.Errorf("audit %v lacks %s", actions, want)
		}
	}
}

// TestADESetupSurvivesOfflineAndRepeatedTokenUpdate: a Mac that repeats
// TokenUpdate while waiting gets one DeviceConfigured, and a Mac that drops
// off the network before it connects still gets it when it returns.
func TestADESetupSurvivesOfflineAndRepeatedTokenUpdate(t *testing.T) {
	ts, apple := startADEServer(t)
	ts.abmAssign(t, "", "C02FLAKY01")
	mac := ts.newMac(t, mdmtest.WithSerialNumber("C02FLAKY01"), mdmtest.WithOS("15.7.9", "24G830"))
	if err := mac.EnrollADE(t.Context(), ts.hc, ts.url+"/mdm/enroll", apple); err != nil {
		t.Fatal(err)
	}
	// macOS may send TokenUpdate again while it waits.
	if _, err := mac.Checkin(t.Context(), mdmtest.TokenUpdateMessage{MessageType: "TokenUpdate", Topic: mac.Enrollment().Topic,
		UDID: mac.UDID, Token: mac.Token, PushMagic: mac.PushMagic, AwaitingConfiguration: true}); err != nil {
		t.Fatal(err)
	}
	mac.SetOffline(true)
	if _, err := mac.Connect(t.Context()); !errors.Is(err, mdmtest.ErrOffline) {
		t.Fatalf("offline connect err = %v", err)
	}
	mac.SetOffline(false)
	sess, err := mac.Connect(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, rt := range sess.RequestTypes() {
		if rt == "DeviceConfigured" {
			n++
		}
	}
	if n != 1 || mac.AwaitingConfiguration() {
		t.Errorf("DeviceConfigured sent %d times (%v), awaiting %v", n, sess.RequestTypes(), mac.AwaitingConfiguration())
	}
}
