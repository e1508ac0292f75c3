package mdmtest

import (
	"context"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/smallstep/pkcs7"
)

func newTestDevice(t testing.TB, opts ...Option) *Device {
	t.Helper()
	d, err := New(append([]Option{WithKeyPool(testKeys())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestEnrollAndConnect(t *testing.T) {
	tests := []struct {
		name       string
		cfg        serverConfig
		opts       []Option
		wantDigest asn1.ObjectIdentifier
	}{
		{name: "signed profile, CA recipient, SHA-256", cfg: serverConfig{signMessage: true}, wantDigest: pkcs7.OIDDigestAlgorithmSHA256},
		{name: "RA recipient", cfg: serverConfig{signMessage: true, raCert: true}, wantDigest: pkcs7.OIDDigestAlgorithmSHA256},
		{name: "SHA-1 signatures", cfg: serverConfig{signMessage: true}, opts: []Option{WithSHA1Signatures()}, wantDigest: pkcs7.OIDDigestAlgorithmSHA1},
		{name: "unsigned profile, GET PKIOperation, no CheckInURL", cfg: serverConfig{signMessage: true, unsignedProfile: true, noPOST: true, noCheckInURL: true}, wantDigest: pkcs7.OIDDigestAlgorithmSHA256},
		{name: "SignMessage off", cfg: serverConfig{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			srv := newTestServer(t, tt.cfg)
			d := newTestDevice(t, tt.opts...)
			if err := d.Enroll(ctx, srv.srv.Client(), srv.profileURL()); err != nil {
				t.Fatalf("Enroll: %v", err)
			}

			e := d.Enrollment()
			if e == nil || e.Certificate == nil {
				t.Fatal("no enrollment after Enroll")
			}
			if _, err := e.Certificate.Verify(x509.VerifyOptions{Roots: srv.caPool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Errorf("issued certificate does not chain to the test CA: %v", err)
			}
			if got, want := e.Certificate.Subject.CommonName, "mdmtest device"; got != want {
				t.Errorf("certificate CN = %q, want %q (from the SCEP payload Subject)", got, want)
			}
			if e.Profile.Signed == tt.cfg.unsignedProfile {
				t.Errorf("Profile.Signed = %v with unsignedProfile %v", e.Profile.Signed, tt.cfg.unsignedProfile)
			}
			wantCheckin := srv.srv.URL + "/checkin"
			if tt.cfg.noCheckInURL {
				wantCheckin = srv.srv.URL + "/mdm"
			}
			if e.CheckInURL != wantCheckin {
				t.Errorf("CheckInURL = %q, want %q", e.CheckInURL, wantCheckin)
			}

			srv.mu.Lock()
			checkins := slices.Clone(srv.checkins)
			srv.mu.Unlock()
			if len(checkins) != 2 {
				t.Fatalf("server saw %d check-ins, want 2", len(checkins))
			}
			auth, tok := checkins[0], checkins[1]
			wantAuth := map[string]any{
				"MessageType": "Authenticate", "Topic": "com.apple.mgmt.External.mdmtest", "UDID": d.UDID,
				"OSVersion": d.OSVersion(), "BuildVersion": d.BuildVersion(), "ProductName": d.ProductName,
				"SerialNumber": d.SerialNumber, "DeviceName": d.DeviceName, "Model": d.Model, "ModelName": d.ModelName,
			}
			for k, want := range wantAuth {
				if auth[k] != want {
					t.Errorf("Authenticate[%s] = %v, want %v", k, auth[k], want)
				}
			}
			if tok["MessageType"] != "TokenUpdate" || tok["PushMagic"] != d.PushMagic || tok["AwaitingConfiguration"] != false {
				t.Errorf("TokenUpdate = %v", tok)
			}
			if b, _ := tok["Token"].([]byte); len(b) != 32 || string(b) != string(d.Token) {
				t.Errorf("TokenUpdate Token = %x, want the device's 32-byte token", b)
			}

			uuid := srv.enqueue(t, d.UDID, "DeviceInformation", map[string]any{"Queries": []string{"OSVersion", "SerialNumber"}})
			sess, err := d.Connect(ctx)
			if err != nil {
				t.Fatalf("Connect: %v", err)
			}
			if len(sess.Commands) != 1 || sess.Commands[0].CommandUUID != uuid || sess.Commands[0].Status != StatusAcknowledged {
				t.Fatalf("session = %+v, want one acknowledged %s", sess.Commands, uuid)
			}
			if sess.Requests != 2 {
				t.Errorf("Requests = %d, want 2 (Idle, then the report)", sess.Requests)
			}
			if n := srv.queueLen(d.UDID); n != 0 {
				t.Errorf("server queue has %d commands left, want 0", n)
			}
			srv.mu.Lock()
			report := srv.reports[len(srv.reports)-1]
			digests := slices.Clone(srv.digests)
			srv.mu.Unlock()
			qr, _ := report["QueryResponses"].(map[string]any)
			if qr["SerialNumber"] != d.SerialNumber || qr["OSVersion"] != d.OSVersion() {
				t.Errorf("QueryResponses = %v", qr)
			}
			if tt.wantDigest == nil {
				if len(digests) != 0 {
					t.Errorf("server verified %d signatures with SignMessage off", len(digests))
				}
				return
			}
			if len(digests) != 4 {
				t.Errorf("server verified %d signatures, want 4", len(digests))
			}
			for _, dg := range digests {
				if !dg.Equal(tt.wantDigest) {
					t.Errorf("digest %v, want %v", dg, tt.wantDigest)
				}
			}
		})
	}
}

func TestEnrollFailures(t *testing.T) {
	tests := []struct {
		name    string
		cfg     serverConfig
		opts    []Option
		wantErr string
	}{
		{name: "wrong challenge", cfg: serverConfig{signMessage: true, badChallenge: true}, wantErr: "FAILURE"},
		{name: "identity UUID matches nothing", cfg: serverConfig{signMessage: true, wrongIdentity: true}, wantErr: "IdentityCertificateUUID"},
		{name: "profile signer not trusted", cfg: serverConfig{signMessage: true}, opts: []Option{WithProfileRoots(x509.NewCertPool())}, wantErr: "verify profile signature"},
		{name: "unsigned profile with required roots", cfg: serverConfig{unsignedProfile: true}, opts: []Option{WithProfileRoots(x509.NewCertPool())}, wantErr: "not signed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t, tt.cfg)
			d := newTestDevice(t, tt.opts...)
			err := d.Enroll(context.Background(), srv.srv.Client(), srv.profileURL())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Enroll error = %v, want it to contain %q", err, tt.wantErr)
			}
			if d.Enrollment() != nil {
				t.Error("failed Enroll left an enrollment behind")
			}
			if _, err := d.Connect(context.Background()); !errors.Is(err, ErrNotEnrolled) {
				t.Errorf("Connect after failed Enroll = %v, want ErrNotEnrolled", err)
			}
		})
	}
}

func TestEnrollTrustedProfile(t *testing.T) {
	srv := newTestServer(t, serverConfig{signMessage: true})
	d := newTestDevice(t, WithProfileRoots(srv.caPool))
	if err := d.Enroll(context.Background(), srv.srv.Client(), srv.profileURL()); err != nil {
		t.Fatalf("Enroll with the CA as profile root: %v", err)
	}
	if got := d.Enrollment().Profile.Signer.Subject.CommonName; got != "mdmtest profile signer" {
		t.Errorf("profile signer = %q", got)
	}
}

func TestCheckinMessages(t *testing.T) {
	ctx := context.Background()
	srv := newTestServer(t, serverConfig{signMessage: true})
	d := newTestDevice(t)
	if _, err := d.GetBootstrapToken(ctx); !errors.Is(err, ErrNotEnrolled) {
		t.Fatalf("GetBootstrapToken before Enroll = %v, want ErrNotEnrolled", err)
	}
	if err := d.Enroll(ctx, srv.srv.Client(), srv.profileURL()); err != nil {
		t.Fatal(err)
	}
	tok, err := d.GetBootstrapToken(ctx)
	if err != nil || tok != nil {
		t.Fatalf("GetBootstrapToken before escrow = %x, %v; want nil, nil", tok, err)
	}
	if err := d.SetBootstrapToken(ctx); err != nil {
		t.Fatal(err)
	}
	tok, err = d.GetBootstrapToken(ctx)
	if err != nil || string(tok) != string(d.BootstrapToken) {
		t.Fatalf("GetBootstrapToken = %x, %v; want the escrowed token", tok, err)
	}
	answer, err := d.DeclarativeManagement(ctx, "tokens", nil)
	if err != nil || !strings.Contains(string(answer), "SyncTokens") {
		t.Fatalf("DeclarativeManagement tokens = %s, %v", answer, err)
	}
	if _, err := d.Checkin(ctx, map[string]any{"MessageType": "DeclarativeManagement", "Endpoint": "status", "Data": []byte(`{"StatusItems":{}}`)}); err != nil {
		t.Fatal(err)
	}
	if err := d.CheckOut(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = d.Checkin(ctx, map[string]any{"MessageType": "Bogus"})
	var he *HTTPError
	if !errors.As(err, &he) || he.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown check-in = %v, want HTTP 400", err)
	}

	srv.mu.Lock()
	defer srv.mu.Unlock()
	var types []string
	for _, c := range srv.checkins {
		types = append(types, c["MessageType"].(string))
		if c["UDID"] != d.UDID {
			t.Errorf("%s check-in UDID = %v", c["MessageType"], c["UDID"])
		}
	}
	want := []string{"Authenticate", "TokenUpdate", "GetBootstrapToken", "SetBootstrapToken", "GetBootstrapToken",
		"DeclarativeManagement", "DeclarativeManagement", "CheckOut", "Bogus"}
	if !slices.Equal(types, want) {
		t.Errorf("check-ins = %v, want %v", types, want)
	}
	if got := srv.checkins[6]["Data"]; string(got.([]byte)) != `{"StatusItems":{}}` {
		t.Errorf("DeclarativeManagement Data = %v", got)
	}
}

func TestConnectNotNowAndErrors(t *testing.T) {
	ctx := context.Background()
	srv := newTestServer(t, serverConfig{signMessage: true})
	d := newTestDevice(t)
	if err := d.Enroll(ctx, srv.srv.Client(), srv.profileURL()); err != nil {
		t.Fatal(err)
	}
	info := srv.enqueue(t, d.UDID, "DeviceInformation", map[string]any{"Queries": []string{"UDID"}})
	other := srv.enqueue(t, d.UDID, "RestartDevice", nil)
	d.AnswerNotNow("DeviceInformation", 1)

	sess, err := d.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	type seen struct{ uuid, status string }
	got := func(s *Session) []seen {
		var out []seen
		for _, c := range s.Commands {
			out = append(out, seen{c.CommandUUID, c.Status})
		}
		return out
	}
	if want := []seen{{info, StatusNotNow}, {other, StatusError}}; !slices.Equal(got(sess), want) {
		t.Fatalf("first session = %v, want %v", got(sess), want)
	}
	if n := srv.queueLen(d.UDID); n != 1 {
		t.Fatalf("queue = %d after NotNow, want 1", n)
	}
	sess, err = d.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []seen{{info, StatusAcknowledged}}; !slices.Equal(got(sess), want) {
		t.Fatalf("second session = %v, want %v", got(sess), want)
	}

	// An offline Mac never reaches the server.
	d.SetOffline(true)
	if _, err := d.Connect(ctx); !errors.Is(err, ErrOffline) {
		t.Errorf("offline Connect = %v, want ErrOffline", err)
	}
	d.SetOffline(false)

	// A server error status ends the session with an HTTPError.
	srv.mu.Lock()
	srv.bindings[d.UDID] = "someone else"
	srv.mu.Unlock()
	_, err = d.Connect(ctx)
	var he *HTTPError
	if !errors.As(err, &he) || he.StatusCode != http.StatusUnauthorized {
		t.Errorf("Connect with a foreign binding = %v, want HTTP 401", err)
	}
}

func TestDeferReport(t *testing.T) {
	ctx := context.Background()
	srv := newTestServer(t, serverConfig{signMessage: true})
	d := newTestDevice(t)
	if err := d.Enroll(ctx, srv.srv.Client(), srv.profileURL()); err != nil {
		t.Fatal(err)
	}
	list := srv.enqueue(t, d.UDID, "ProfileList", nil)
	info := srv.enqueue(t, d.UDID, "DeviceInformation", map[string]any{"Queries": []string{"UDID"}})
	d.DeferReport("ProfileList", 1)

	// The session ends on receiving ProfileList: nothing is reported.
	sess, err := d.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sess.Commands) != 0 || sess.Requests != 1 {
		t.Fatalf("first session: %d commands answered in %d requests, want 0 in 1", len(sess.Commands), sess.Requests)
	}
	if n := srv.queueLen(d.UDID); n != 2 {
		t.Fatalf("queue = %d with the report deferred, want 2", n)
	}
	srv.mu.Lock()
	nReports := len(srv.reports)
	srv.mu.Unlock()

	// A session that does not reach the server keeps the report.
	d.SetOffline(true)
	if sess, err := d.Connect(ctx); !errors.Is(err, ErrOffline) || len(sess.Commands) != 0 {
		t.Fatalf("offline Connect = %v with %d commands, want ErrOffline and none", err, len(sess.Commands))
	}
	d.SetOffline(false)

	// The next session opens with the report instead of Idle.
	sess, err = d.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range sess.Commands {
		got = append(got, c.CommandUUID+":"+c.Status)
	}
	if want := []string{list + ":Acknowledged", info + ":Acknowledged"}; !slices.Equal(got, want) {
		t.Fatalf("second session = %v, want %v", got, want)
	}
	srv.mu.Lock()
	first := srv.reports[nReports]
	srv.mu.Unlock()
	if first["Status"] != StatusAcknowledged || first["CommandUUID"] != list {
		t.Errorf("second session opened with %v, want the ProfileList report", first)
	}
	if n := srv.queueLen(d.UDID); n != 0 {
		t.Errorf("queue = %d, want 0", n)
	}
	// Only one report was deferred: the next session starts with Idle.
	srv.enqueue(t, d.UDID, "ProfileList", nil)
	if sess, err = d.Connect(ctx); err != nil || len(sess.Commands) != 1 || sess.Requests != 2 {
		t.Errorf("third session: %d commands in %d requests, err %v; want 1 in 2", len(sess.Commands), sess.Requests, err)
	}
}

func TestConnectMaxCommands(t *testing.T) {
	ctx := context.Background()
	srv := newTestServer(t, serverConfig{})
	d := newTestDevice(t, WithMaxCommands(2))
	if err := d.Enroll(ctx, srv.srv.Client(), srv.profileURL()); err != nil {
		t.Fatal(err)
	}
	// A NotNow'd command the server keeps re-sending would loop forever.
	for range 3 {
		srv.enqueue(t, d.UDID, "DeviceInformation", map[string]any{"Queries": []string{"UDID"}})
	}
	sess, err := d.Connect(ctx)
	if err == nil || !strings.Contains(err.Error(), "more than 2 commands") {
		t.Fatalf("Connect = %v, want a too-many-commands error", err)
	}
	if len(sess.Commands) != 2 {
		t.Errorf("answered %d commands, want 2", len(sess.Commands))
	}
}

func TestFleet(t *testing.T) {
	ctx := context.Background()
	srv := newTestServer(t, serverConfig{signMessage: true})
	f, err := NewFleet(6, WithKeyPool(testKeys()))
	if err != nil {
		t.Fatal(err)
	}
	f.Workers = 3
	if err := f.Enroll(ctx, srv.srv.Client(), srv.profileURL()); err != nil {
		t.Fatal(err)
	}
	for _, d := range f.Devices {
		srv.enqueue(t, d.UDID, "DeviceInformation", map[string]any{"Queries": []string{"OSVersion"}})
	}
	n, err := f.Connect(ctx)
	if err != nil || n != len(f.Devices) {
		t.Fatalf("Connect = %d, %v; want %d commands", n, err, len(f.Devices))
	}
	srv.mu.Lock()
	if srv.scepIssued != 6 || len(srv.bindings) != 6 {
		t.Errorf("server issued %d certs and bound %d devices, want 6 each", srv.scepIssued, len(srv.bindings))
	}
	srv.mu.Unlock()
	counts := map[string]int{}
	for _, s := range f.Stats().Summary() {
		counts[s.Op] = s.Count
		if s.Errors != 0 || s.Max < s.Min || s.P50 < s.Min || s.P99 > s.Max {
			t.Errorf("bad stats %v", s)
		}
	}
	want := map[string]int{
		"enroll.profile": 6, "enroll.scep": 6, "scep.GetCACaps": 6, "scep.GetCACert": 6, "scep.PKIOperation": 6,
		"checkin.Authenticate": 6, "checkin.TokenUpdate": 6, "connect": 6, "connect.request": 12,
	}
	for op, c := range want {
		if counts[op] != c {
			t.Errorf("stats[%s].Count = %d, want %d", op, counts[op], c)
		}
	}

	// Failures are counted, not fatal.
	f.Devices[0].SetOffline(true)
	_, err = f.Connect(ctx)
	var fe *FleetError
	if !errors.As(err, &fe) || fe.Failed != 1 || !errors.Is(err, ErrOffline) {
		t.Errorf("Connect with one offline device = %v, want a FleetError for 1 device wrapping ErrOffline", err)
	}
}
