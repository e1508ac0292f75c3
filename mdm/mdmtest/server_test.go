package mdmtest

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/micromdm/plist"
	"github.com/smallstep/pkcs7"
	"github.com/smallstep/scep"
)

// testKeys is a small pool of throwaway keys (testdata/keys, made with
// openssl genpkey) shared by the test CA, RA, profile signer and devices,
// so tests do not spend seconds generating RSA keys under -race.
var testKeys = sync.OnceValue(func() *KeyPool {
	var keys []*rsa.PrivateKey
	for i := 1; i <= 4; i++ {
		b, err := os.ReadFile(fmt.Sprintf("testdata/keys/test%d.key", i))
		if err != nil {
			panic(err)
		}
		blk, _ := pem.Decode(b)
		if blk == nil {
			panic("no PEM in test key")
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			panic(err)
		}
		keys = append(keys, k.(*rsa.PrivateKey))
	}
	p, err := NewKeyPoolFrom(keys...)
	if err != nil {
		panic(err)
	}
	return p
})

// serverConfig selects the behaviour of the in-test MDM server.
type serverConfig struct {
	unsignedProfile bool // serve the profile as a bare plist
	raCert          bool // GetCACert answers CA + RA (application/x-x509-ca-ra-cert)
	noPOST          bool // GetCACaps without POSTPKIOperation
	noCheckInURL    bool // profile without CheckInURL
	signMessage     bool // profile SignMessage
	wrongIdentity   bool // IdentityCertificateUUID names no payload
	badChallenge    bool // the profile carries a challenge the SCEP server refuses
	challenge       string
}

type queued struct {
	uuid string
	body []byte
}

// testServer is a small, independent MDM server: it serves a profile, runs
// SCEP with a test CA, verifies Mdm-Signature, binds certificates at
// Authenticate and hands out queued commands nanomdm-style.
type testServer struct {
	t   testing.TB
	cfg serverConfig
	srv *httptest.Server

	ca, ra, signer          *x509.Certificate
	caKey, raKey, signerKey *rsa.PrivateKey
	caPool                  *x509.CertPool

	mu         sync.Mutex
	checkins   []map[string]any
	reports    []map[string]any
	digests    []asn1.ObjectIdentifier
	headers    []http.Header
	bindings   map[string]string // UDID -> cert hash
	queues     map[string][]queued
	notNow     map[string]map[string]bool // UDID -> command UUIDs NotNow'd this session
	bootstrap  map[string][]byte
	scepIssued int
}

func newTestServer(t testing.TB, cfg serverConfig) *testServer {
	t.Helper()
	if cfg.challenge == "" {
		cfg.challenge = "s3cret"
	}
	keys := testKeys()
	s := &testServer{
		t: t, cfg: cfg,
		caKey: keys.keys[0], raKey: keys.keys[1], signerKey: keys.keys[2],
		bindings:  make(map[string]string),
		queues:    make(map[string][]queued),
		notNow:    make(map[string]map[string]bool),
		bootstrap: make(map[string][]byte),
	}
	now := time.Now()
	s.ca = mustCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mdmtest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}, nil, s.caKey, s.caKey)
	s.ra = mustCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "mdmtest RA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageKeyEncipherment | x509.KeyUsageDigitalSignature,
	}, s.ca, s.caKey, s.raKey)
	s.signer = mustCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "mdmtest profile signer"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}, s.ca, s.caKey, s.signerKey)
	s.caPool = x509.NewCertPool()
	s.caPool.AddCert(s.ca)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /enroll", s.serveProfile)
	mux.HandleFunc("/scep", s.serveSCEP)
	mux.HandleFunc("PUT /checkin", s.serveCheckin)
	mux.HandleFunc("PUT /mdm", func(w http.ResponseWriter, r *http.Request) {
		// One URL for both, told apart by content type, as nanomdm does.
		if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-apple-aspen-mdm-checkin") {
			s.serveCheckin(w, r)
			return
		}
		s.serveConnect(w, r)
	})
	s.srv = httptest.NewTLSServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

func mustCert(t testing.TB, tmpl, parent *x509.Certificate, parentKey, key *rsa.PrivateKey) *x509.Certificate {
	t.Helper()
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (s *testServer) profileURL() string { return s.srv.URL + "/enroll" }

func (s *testServer) profileBytes() ([]byte, error) {
	scepUUID := "CB90E976-AD44-4B69-8108-8095E6260978"
	identity := scepUUID
	if s.cfg.wrongIdentity {
		identity = "00000000-0000-0000-0000-000000000000"
	}
	challenge := s.cfg.challenge
	if s.cfg.badChallenge {
		challenge += "-wrong"
	}
	mdmPayload := map[string]any{
		"PayloadType": "com.apple.mdm", "PayloadUUID": "96B11019-B54C-49DC-9480-43525834DE7B",
		"PayloadIdentifier": "test.mdm", "PayloadVersion": 1,
		"ServerURL": s.srv.URL + "/mdm", "Topic": "com.apple.mgmt.External.mdmtest",
		"SignMessage": s.cfg.signMessage, "IdentityCertificateUUID": identity,
		"AccessRights": 8191, "CheckOutWhenRemoved": true,
		"ServerCapabilities": []string{"com.apple.mdm.per-user-connections", "com.apple.mdm.bootstraptoken"},
	}
	if !s.cfg.noCheckInURL {
		mdmPayload["CheckInURL"] = s.srv.URL + "/checkin"
	}
	profile := map[string]any{
		"PayloadType": "Configuration", "PayloadIdentifier": "test.enroll", "PayloadVersion": 1,
		"PayloadUUID": "F9760DD4-F2D1-4F29-8D2C-48D52DD0A9B3", "PayloadDisplayName": "Enrollment",
		"PayloadContent": []any{
			map[string]any{"PayloadType": "com.apple.security.root", "PayloadUUID": "A1", "PayloadIdentifier": "test.ca",
				"PayloadVersion": 1, "PayloadContent": s.ca.Raw},
			map[string]any{
				"PayloadType": "com.apple.security.scep", "PayloadUUID": scepUUID,
				"PayloadIdentifier": "test.scep", "PayloadVersion": 1,
				"PayloadContent": map[string]any{
					"URL": s.srv.URL + "/scep", "Challenge": challenge, "Keysize": 2048,
					"Key Type": "RSA", "Key Usage": 5,
					"Subject":       [][][]string{{{"O", "Sundial Test"}}, {{"CN", "mdmtest device"}}},
					"CAFingerprint": sha256Sum(s.ca.Raw),
				},
			},
			mdmPayload,
		},
	}
	body, err := plist.MarshalIndent(profile, "\t")
	if err != nil || s.cfg.unsignedProfile {
		return body, err
	}
	sd, err := pkcs7.NewSignedData(body)
	if err != nil {
		return nil, err
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if err := sd.AddSignerChain(s.signer, s.signerKey, []*x509.Certificate{s.ca}, pkcs7.SignerInfoConfig{}); err != nil {
		return nil, err
	}
	return sd.Finish()
}

func sha256Sum(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

func (s *testServer) serveProfile(w http.ResponseWriter, r *http.Request) {
	b, err := s.profileBytes()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/x-apple-aspen-config")
	w.Write(b)
}

func (s *testServer) recipient() (*x509.Certificate, *rsa.PrivateKey) {
	if s.cfg.raCert {
		return s.ra, s.raKey
	}
	return s.ca, s.caKey
}

func (s *testServer) serveSCEP(w http.ResponseWriter, r *http.Request) {
	switch op := r.URL.Query().Get("operation"); op {
	case "GetCACaps":
		caps := "Renewal\nSHA-256\nAES\nSCEPStandard\n"
		if !s.cfg.noPOST {
			caps += "POSTPKIOperation\n"
		}
		w.Write([]byte(caps))
	case "GetCACert":
		if s.cfg.raCert {
			deg, err := scep.DegenerateCertificates([]*x509.Certificate{s.ca, s.ra})
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "application/x-x509-ca-ra-cert")
			w.Write(deg)
			return
		}
		w.Header().Set("Content-Type", "application/x-x509-ca-cert")
		w.Write(s.ca.Raw)
	case "PKIOperation":
		var body []byte
		if r.Method == http.MethodPost {
			if r.Header.Get("Content-Type") != "application/x-pki-message" {
				http.Error(w, "bad content type", http.StatusBadRequest)
				return
			}
			body, _ = io.ReadAll(r.Body)
		} else {
			if !s.cfg.noPOST {
				http.Error(w, "GET PKIOperation although POST is offered", http.StatusBadRequest)
				return
			}
			var err error
			if body, err = base64.StdEncoding.DecodeString(r.URL.Query().Get("message")); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
		rep, err := s.pkiOperation(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/x-pki-message")
		w.Write(rep)
	default:
		http.Error(w, "unknown operation", http.StatusBadRequest)
	}
}

func (s *testServer) pkiOperation(body []byte) ([]byte, error) {
	msg, err := scep.ParsePKIMessage(body)
	if err != nil {
		return nil, err
	}
	rc, rk := s.recipient()
	if err := msg.DecryptPKIEnvelope(rc, rk); err != nil {
		return nil, err
	}
	if msg.CSRReqMessage.ChallengePassword != s.cfg.challenge {
		fail, err := msg.Fail(rc, rk, scep.BadRequest)
		if err != nil {
			return nil, err
		}
		return fail.Raw, nil
	}
	csr := msg.CSRReqMessage.CSR
	if err := csr.CheckSignature(); err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      csr.Subject,
		NotBefore:    now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.ca, csr.PublicKey, s.caKey)
	if err != nil {
		return nil, err
	}
	crt, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	rep, err := msg.Success(rc, rk, crt)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.scepIssued++
	s.mu.Unlock()
	return rep.Raw, nil
}

// verify checks the Mdm-Signature header and returns the signer's hash.
func (s *testServer) verify(r *http.Request, body []byte) (string, error) {
	h := r.Header.Get("Mdm-Signature")
	if h == "" {
		if s.cfg.signMessage {
			return "", errors.New("missing Mdm-Signature")
		}
		return "", nil
	}
	der, err := base64.StdEncoding.DecodeString(h)
	if err != nil {
		return "", err
	}
	p7, err := pkcs7.Parse(der)
	if err != nil {
		return "", err
	}
	p7.Content = body
	if err := p7.Verify(); err != nil {
		return "", err
	}
	cert := p7.GetOnlySigner()
	if cert == nil {
		return "", errors.New("no signer")
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: s.caPool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return "", err
	}
	s.mu.Lock()
	s.digests = append(s.digests, p7.Signers[0].DigestAlgorithm.Algorithm)
	s.mu.Unlock()
	return hex.EncodeToString(sha256Sum(cert.Raw)), nil
}

func (s *testServer) readSigned(w http.ResponseWriter, r *http.Request, contentType string) (map[string]any, string, bool) {
	if r.Header.Get("Content-Type") != contentType || r.Header.Get("User-Agent") != "MDM/1.0" {
		http.Error(w, "bad headers", http.StatusBadRequest)
		return nil, "", false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return nil, "", false
	}
	hash, err := s.verify(r, body)
	if err != nil {
		http.Error(w, "signature: "+err.Error(), http.StatusBadRequest)
		return nil, "", false
	}
	if !bytes.HasPrefix(body, []byte("<?xml")) {
		http.Error(w, "not an XML plist", http.StatusBadRequest)
		return nil, "", false
	}
	var m map[string]any
	if err := plist.Unmarshal(body, &m); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return nil, "", false
	}
	udid, _ := m["UDID"].(string)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.headers = append(s.headers, r.Header.Clone())
	if mt, _ := m["MessageType"].(string); mt == "Authenticate" {
		s.bindings[udid] = hash
	} else if s.cfg.signMessage && s.bindings[udid] != hash {
		http.Error(w, "certificate not bound to this UDID", http.StatusUnauthorized)
		return nil, "", false
	}
	return m, udid, true
}

func (s *testServer) serveCheckin(w http.ResponseWriter, r *http.Request) {
	m, udid, ok := s.readSigned(w, r, "application/x-apple-aspen-mdm-checkin")
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checkins = append(s.checkins, m)
	switch m["MessageType"] {
	case "Authenticate", "TokenUpdate", "CheckOut":
		if m["Topic"] != "com.apple.mgmt.External.mdmtest" {
			http.Error(w, "bad topic", http.StatusBadRequest)
		}
	case "SetBootstrapToken":
		tok, _ := m["BootstrapToken"].([]byte)
		s.bootstrap[udid] = tok
	case "GetBootstrapToken":
		if tok := s.bootstrap[udid]; len(tok) > 0 {
			b, _ := plist.Marshal(map[string]any{"BootstrapToken": tok})
			w.Write(b)
		}
	case "DeclarativeManagement":
		if m["Endpoint"] == "tokens" {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"SyncTokens":{"DeclarationsToken":"abc","Timestamp":"2026-01-01T00:00:00Z"}}`))
		}
	default:
		http.Error(w, "unknown message type", http.StatusBadRequest)
	}
}

func (s *testServer) serveConnect(w http.ResponseWriter, r *http.Request) {
	m, udid, ok := s.readSigned(w, r, "application/x-apple-aspen-mdm")
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reports = append(s.reports, m)
	status, _ := m["Status"].(string)
	uuid, _ := m["CommandUUID"].(string)
	switch status {
	case "Idle":
		s.notNow[udid] = nil // a new session offers NotNow'd commands again
	case "Acknowledged", "Error", "CommandFormatError":
		q := s.queues[udid]
		for i := range q {
			if q[i].uuid == uuid {
				s.queues[udid] = append(q[:i], q[i+1:]...)
				break
			}
		}
	case "NotNow":
		if s.notNow[udid] == nil {
			s.notNow[udid] = make(map[string]bool)
		}
		s.notNow[udid][uuid] = true
	default:
		http.Error(w, "bad status", http.StatusBadRequest)
		return
	}
	for _, c := range s.queues[udid] {
		if !s.notNow[udid][c.uuid] {
			w.Write(c.body)
			return
		}
	}
}

// enqueue queues a command for udid and returns its UUID.
func (s *testServer) enqueue(t testing.TB, udid, requestType string, fields map[string]any) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	uuid := fmt.Sprintf("cmd-%d-%s", len(s.queues[udid])+len(s.reports), strings.ToLower(requestType))
	s.queues[udid] = append(s.queues[udid], queued{uuid: uuid, body: commandPlist(t, uuid, requestType, fields)})
	return uuid
}

func (s *testServer) queueLen(udid string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queues[udid])
}

func commandPlist(t testing.TB, uuid, requestType string, fields map[string]any) []byte {
	t.Helper()
	cmd := map[string]any{"RequestType": requestType}
	for k, v := range fields {
		cmd[k] = v
	}
	b, err := plist.Marshal(map[string]any{"CommandUUID": uuid, "Command": cmd})
	if err != nil {
		t.Fatal(err)
	}
	return b
}
