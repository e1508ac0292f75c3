package ade_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/micromdm/plist"

	"github.com/sundial-mdm/sundial/certs"
	"github.com/sundial-mdm/sundial/certs/certstest"
	"github.com/sundial-mdm/sundial/enrollment"
	"github.com/sundial-mdm/sundial/enrollment/ade"
	"github.com/sundial-mdm/sundial/mdm/mdmtest"
	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/bolt"
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

type signer struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func (s signer) SignProfile(p []byte) ([]byte, error) { return certs.SignProfile(p, s.cert, s.key) }

type env struct {
	srv        *httptest.Server
	apple      *mdmtest.AppleDeviceCA
	challenges *enrollment.MemoryChallengeStore
	store      *bolt.Store
	roots      *x509.CertPool
	minimum    string // the group "pilot"'s setup minimum
}

func newEnv(t *testing.T) *env {
	t.Helper()
	now := time.Now()
	apple, err := mdmtest.NewAppleDeviceCA(now)
	if err != nil {
		t.Fatal(err)
	}
	authority := certstest.NewAuthority(t, now)
	store, err := bolt.Open(filepath.Join(t.TempDir(), "sundial.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := &env{apple: apple, challenges: enrollment.NewMemoryChallengeStore(), store: store, minimum: "15.4"}
	shared, err := enrollment.NewSharedChallenge("shared-secret")
	if err != nil {
		t.Fatal(err)
	}
	cert, key := authority.ProfileSigner()
	profiles, err := enrollment.NewProfileHandler(enrollment.ProfileConfig{PublicURL: "https://mdm.example.com", CACert: authority.CA()},
		enrollment.StaticTopic("com.apple.mgmt.External.ade-test"), shared, signer{cert, key}, fixedClock{now})
	if err != nil {
		t.Fatal(err)
	}
	v, err := ade.NewVerifier([]*x509.Certificate{apple.Root})
	if err != nil {
		t.Fatal(err)
	}
	minimum := ade.SetupMinimumFunc(func(_ context.Context, dev *storage.ADEDevice, _ *ade.MachineInfo) (ade.Requirement, error) {
		if dev.Group == "pilot" {
			return ade.Requirement{OSVersion: e.minimum, BuildVersion: "24E248"}, nil
		}
		return ade.Requirement{}, nil
	})
	h := ade.NewHandler(v, store, minimum, enrollment.NewBoundChallenges(e.challenges, time.Hour), profiles, fixedClock{now})
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	e.roots = x509.NewCertPool()
	e.roots.AddCert(cert)
	return e
}

// assign puts serials into ABM's assignment, in group.
func (e *env) assign(t *testing.T, group string, serials ...string) {
	t.Helper()
	p := storage.ADEPage{Server: "main", Cursor: "c"}
	for _, s := range serials {
		p.Upsert = append(p.Upsert, storage.ADEDevice{Serial: s, Model: "MacBook Air", OS: "OSX"})
	}
	if err := e.store.ApplyADEPage(context.Background(), p, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, s := range serials {
		if err := e.store.SetADEGroup(context.Background(), s, group, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
}

func (e *env) post(t *testing.T, body []byte) (int, string, []byte) {
	t.Helper()
	resp, err := http.Post(e.srv.URL, mdmtest.ContentTypeMachineInfo, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

func (e *env) signed(t *testing.T, mi mdmtest.MachineInfo, ca *mdmtest.AppleDeviceCA) []byte {
	t.Helper()
	cert, key, err := ca.IssueDevice(mi.UDID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, err := mdmtest.SignedMachineInfo(mi, cert, key, ca.Intermediate)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func machine(serial, os, build string) mdmtest.MachineInfo {
	mi := mdmtest.MachineInfo{UDID: "0000FE00-" + serial, Serial: serial, Product: "Mac14,2", Version: build}
	if os != "" {
		mi.OSVersion, mi.MDMCanRequestSoftwareUpdate = os, true
	}
	return mi
}

func TestRefusalsStoreNothing(t *testing.T) {
	e := newEnv(t)
	e.assign(t, "", "C02ASSIGNED")
	foreign, err := mdmtest.NewAppleDeviceCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	plainPlist, _ := plist.Marshal(machine("C02ASSIGNED", "15.3", "24D60"))
	noUDID := machine("C02ASSIGNED", "15.3", "24D60")
	noUDID.UDID = ""
	cases := []struct {
		name string
		body []byte
		want int
		text string
	}{
		{"empty", nil, 400, "not a signed MachineInfo"},
		{"unsigned plist", plainPlist, 400, "not a signed MachineInfo"},
		{"garbage", []byte("\x30\x82\x01\x00garbage"), 400, "not a signed MachineInfo"},
		{"foreign signed", e.signed(t, machine("C02ASSIGNED", "15.3", "24D60"), foreign), 403, "not signed by a trusted Apple device"},
		{"missing UDID", e.signed(t, noUDID, e.apple), 400, "not a signed MachineInfo"},
		{"not assigned in ABM", e.signed(t, machine("C02STRANGER", "15.3", "24D60"), e.apple), 403, "not assigned to this MDM server"},
		{"too large", bytes.Repeat([]byte("A"), ade.MaxMachineInfoSize+1), 413, "too large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			have, _, body := e.post(t, tc.body)
			if have != tc.want || !strings.Contains(string(body), tc.text) {
				t.Errorf("status %d %q, want %d %q", have, body, tc.want, tc.text)
			}
		})
	}
	if n := e.challenges.Len(); n != 0 {
		t.Errorf("refusals stored %d challenges", n)
	}
	resp, err := http.Get(e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET status %d, want 405", resp.StatusCode)
	}
}

func TestParseMachineInfoRefusals(t *testing.T) {
	for name, b := range map[string]string{
		"binary plist":    "bplist00\x00\x01",
		"not a plist":     "hello",
		"no serial":       `<plist version="1.0"><dict><key>UDID</key><string>ABC-1</string></dict></plist>`,
		"bad udid":        `<plist version="1.0"><dict><key>UDID</key><string>../x</string><key>SERIAL</key><string>S</string></dict></plist>`,
		"overlong serial": `<plist version="1.0"><dict><key>UDID</key><string>ABC-1</string><key>SERIAL</key><string>` + strings.Repeat("S", 65) + `</string></dict></plist>`,
	} {
		if _, err := ade.ParseMachineInfo([]byte(b)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestSetupMinimum(t *testing.T) {
	e := newEnv(t)
	e.assign(t, "pilot", "C02OLD", "C02NEW", "C02VENTURA", "C02NOREQ")
	e.assign(t, "", "C02DEFAULT")

	// Below the group's minimum on macOS 14+: 403 with Apple's JSON.
	status, ct, body := e.post(t, e.signed(t, machine("C02OLD", "15.3.1", "24D70"), e.apple))
	if status != 403 || ct != "application/json" {
		t.Fatalf("old mac: %d %s %s", status, ct, body)
	}
	var ur ade.UpdateRequired
	if err := json.Unmarshal(body, &ur); err != nil {
		t.Fatal(err)
	}
	if ur.Code != "com.apple.softwareupdate.required" || ur.Details.OSVersion != "15.4" || ur.Details.BuildVersion != "24E248" {
		t.Errorf("403 body = %s", body)
	}
	if n := e.challenges.Len(); n != 0 {
		t.Errorf("held mac got %d challenges", n)
	}

	// A Mac that cannot update on request, or reports no OS_VERSION
	// (macOS 13 and older), enrolls and is enforced afterwards.
	noReq := machine("C02NOREQ", "15.3.1", "24D70")
	noReq.MDMCanRequestSoftwareUpdate = false
	for name, mi := range map[string]mdmtest.MachineInfo{
		"at minimum":    machine("C02NEW", "15.4", "24E248"),
		"macOS 13":      machine("C02VENTURA", "", "22G91"),
		"cannot update": noReq,
		"default group": machine("C02DEFAULT", "14.0", "23A344"),
	} {
		status, ct, body := e.post(t, e.signed(t, mi, e.apple))
		if status != 200 || ct != ade.ProfileContentType {
			t.Errorf("%s: %d %s %.100s", name, status, ct, body)
			continue
		}
		p, err := mdmtest.ParseProfile(body, e.roots)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !p.Signed || p.SCEP == nil || !strings.HasPrefix(p.SCEP.Challenge, "udid:"+mi.UDID+":") {
			t.Errorf("%s: profile signed=%v scep=%+v, want a challenge bound to %s", name, p.Signed, p.SCEP, mi.UDID)
		}
	}
	if n := e.challenges.Len(); n != 4 {
		t.Errorf("%d challenges stored, want 4", n)
	}
}
