package main

import (
	"bytes"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm/mdmtest"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/storage"
)

// startADEServer starts a server trusting a test "Apple" root for ADE.
func startADEServer(t *testing.T) (*testServer, *mdmtest.AppleDeviceCA) {
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
func (ts *testServer) abmAssign(t *testing.T, group string, serials ...string) {
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
