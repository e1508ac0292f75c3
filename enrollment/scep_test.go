package enrollment

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"
	"github.com/smallstep/scep"
)

// settableClock is a Clock the test moves.
type settableClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *settableClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *settableClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

type scepFixture struct {
	pki    *testPKI
	issuer *countingIssuer
	srv    *httptest.Server
	h      *SCEPHandler
	clock  *settableClock
	logs   *syncBuffer
}

// syncBuffer is a bytes.Buffer safe for the handler goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newSCEPFixture(t testing.TB, pki *testPKI, challenges ChallengeVerifier) *scepFixture {
	t.Helper()
	f := &scepFixture{
		pki:    pki,
		issuer: &countingIssuer{pki: pki},
		clock:  &settableClock{t: testNow},
		logs:   &syncBuffer{},
	}
	logger := slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h, err := NewSCEPHandler(pki.ca, pki.ra, pki.raKey, challenges, f.issuer, f.clock, WithSCEPLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	mux := http.NewServeMux()
	mux.Handle(PathSCEP, h)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *scepFixture) get(t testing.TB, query string) (*http.Response, []byte) {
	t.Helper()
	resp, err := f.srv.Client().Get(f.srv.URL + PathSCEP + "?" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func (f *scepFixture) post(t testing.TB, query string, msg []byte) (*http.Response, []byte) {
	t.Helper()
	resp, err := f.srv.Client().Post(f.srv.URL+PathSCEP+"?"+query, ContentTypePKI, bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// caCerts fetches GetCACert the way a device does.
func (f *scepFixture) caCerts(t testing.TB) []*x509.Certificate {
	t.Helper()
	resp, body := f.get(t, "operation=GetCACert")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GetCACert status %d", resp.StatusCode)
	}
	switch ct := resp.Header.Get("Content-Type"); ct {
	case ContentTypeCARACert:
		certs, err := scep.CACerts(body)
		if err != nil {
			t.Fatalf("parse GetCACert: %v", err)
		}
		return certs
	case ContentTypeCACert:
		cert, err := x509.ParseCertificate(body)
		if err != nil {
			t.Fatalf("parse GetCACert: %v", err)
		}
		return []*x509.Certificate{cert}
	default:
		t.Fatalf("GetCACert Content-Type %q", ct)
		return nil
	}
}

// certRep parses a CertRep the way a device does: signed by the RA.
func certRep(t testing.TB, body []byte, ra *x509.Certificate) *scep.PKIMessage {
	t.Helper()
	rep, err := scep.ParsePKIMessage(body, scep.WithCACerts([]*x509.Certificate{ra}))
	if err != nil {
		t.Fatalf("parse CertRep: %v", err)
	}
	if rep.MessageType != scep.CertRep || rep.CertRepMessage == nil {
		t.Fatalf("reply is %v, want a CertRep", rep.MessageType)
	}
	return rep
}

func TestSCEPGetCACaps(t *testing.T) {
	f := newSCEPFixture(t, newECDSAPKI(t), mustShared(t, "c"))
	resp, body := f.get(t, "operation=GetCACaps")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q, want text/plain", ct)
	}
	if want := strings.Join(SCEPCapabilities, "\n") + "\n"; string(body) != want {
		t.Errorf("GetCACaps = %q, want %q", body, want)
	}
	if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(len(body)) {
		t.Errorf("Content-Length = %s for %d bytes", cl, len(body))
	}
	caps := strings.Fields(string(body))
	for _, want := range []string{"POSTPKIOperation", "SHA-256", "AES", "SCEPStandard"} {
		found := false
		for _, c := range caps {
			found = found || c == want
		}
		if !found {
			t.Errorf("GetCACaps lacks %s: %q", want, body)
		}
	}
}

func TestSCEPGetCACert(t *testing.T) {
	tests := []struct {
		name     string
		pki      *testPKI
		wantType string
		wantN    int
	}{
		{"ECDSA CA, RSA RA: the RA alone", newECDSAPKI(t), ContentTypeCARACert, 1},
		{"RSA CA, RSA RA", newRSAPKIWithRA(t), ContentTypeCARACert, 2},
		{"CA is RA", newRSAPKI(t), ContentTypeCACert, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newSCEPFixture(t, tt.pki, mustShared(t, "c"))
			resp, body := f.get(t, "operation=GetCACert")
			if ct := resp.Header.Get("Content-Type"); ct != tt.wantType {
				t.Errorf("Content-Type = %q, want %q", ct, tt.wantType)
			}
			if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(len(body)) {
				t.Errorf("Content-Length = %s for %d bytes", cl, len(body))
			}
			certs := f.caCerts(t)
			if len(certs) != tt.wantN {
				t.Fatalf("GetCACert returned %d certificates, want %d", len(certs), tt.wantN)
			}
			if !certs[0].Equal(tt.pki.ra) {
				t.Error("first certificate is not the RA")
			}
			if tt.wantN == 2 && !certs[1].Equal(tt.pki.ca) {
				t.Error("second certificate is not the CA")
			}
		})
	}
}

func mustShared(t testing.TB, c string) *SharedChallenge {
	t.Helper()
	s, err := NewSharedChallenge(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSCEPRoundTrip enrolls like a Mac: GetCACert, PKCSReq encrypted to the
// RA, CertRep decrypted with the device key, certificate chained to the CA.
func TestSCEPRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		name string
		pki  *testPKI
		get  bool
	}{
		{"ECDSA CA, RSA RA, POST", newECDSAPKI(t), false},
		{"ECDSA CA, RSA RA, GET", newECDSAPKI(t), true},
		{"RSA CA as RA, POST", newRSAPKI(t), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newSCEPFixture(t, tt.pki, mustShared(t, "the-shared-challenge"))
			device := newSCEPDevice(t, testRSAKey(t, 1))
			req := device.request(t, f.caCerts(t), device.csr(t, "the-shared-challenge"))

			var resp *http.Response
			var body []byte
			if tt.get {
				resp, body = f.get(t, "operation=PKIOperation&message="+url.QueryEscape(base64.StdEncoding.EncodeToString(req)))
			} else {
				resp, body = f.post(t, "operation=PKIOperation", req)
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != ContentTypePKI {
				t.Errorf("Content-Type = %q, want %q", ct, ContentTypePKI)
			}
			assertModernCMS(t, body)
			rep := certRep(t, body, tt.pki.ra)
			if rep.PKIStatus != scep.SUCCESS {
				t.Fatalf("pkiStatus = %v (failInfo %v), want SUCCESS", rep.PKIStatus, rep.FailInfo)
			}
			if err := rep.DecryptPKIEnvelope(device.cert, device.key); err != nil {
				t.Fatalf("decrypt CertRep with the device key: %v", err)
			}
			cert := rep.Certificate
			if !device.key.PublicKey.Equal(cert.PublicKey) {
				t.Error("issued certificate is not for the device key")
			}
			roots := x509.NewCertPool()
			roots.AddCert(tt.pki.ca)
			if _, err := cert.Verify(x509.VerifyOptions{
				Roots:       roots,
				CurrentTime: testNow,
				KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			}); err != nil {
				t.Errorf("issued certificate does not chain to the CA: %v", err)
			}
			if cert.Subject.CommonName != DeviceIdentityCommonName {
				t.Errorf("subject CN = %q", cert.Subject.CommonName)
			}
			if n := f.issuer.issued.Load(); n != 1 {
				t.Errorf("issued %d certificates, want 1", n)
			}
			if strings.Contains(f.logs.String(), "the-shared-challenge") {
				t.Error("the challenge appears in the logs")
			}
		})
	}
}

// assertModernCMS checks that a CertRep is signed with SHA-256 and its
// envelope encrypted with AES-128-CBC, not the pkcs7 defaults SHA-1 and DES.
func assertModernCMS(t *testing.T, certRep []byte) {
	t.Helper()
	p7, err := pkcs7.Parse(certRep)
	if err != nil {
		t.Fatal(err)
	}
	for _, si := range p7.Signers {
		if !si.DigestAlgorithm.Algorithm.Equal(pkcs7.OIDDigestAlgorithmSHA256) {
			t.Errorf("CertRep digest %v, want SHA-256", si.DigestAlgorithm.Algorithm)
		}
	}
	aes128CBC, _ := asn1.Marshal(pkcs7.OIDEncryptionAlgorithmAES128CBC)
	desCBC, _ := asn1.Marshal(pkcs7.OIDEncryptionAlgorithmDESCBC)
	if !bytes.Contains(p7.Content, aes128CBC) || bytes.Contains(p7.Content, desCBC) {
		t.Error("CertRep envelope is not AES-128-CBC")
	}
}

func TestSCEPRefusals(t *testing.T) {
	pki := newECDSAPKI(t)
	const challenge = "right-challenge"
	device := newSCEPDevice(t, testRSAKey(t, 1))
	recipients := []*x509.Certificate{pki.ra}

	badSig := device.csr(t, challenge)
	badSig[len(badSig)-1] ^= 0xff

	weakKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// A certificate that is not the RA: the server cannot decrypt for it.
	stranger := newSCEPDevice(t, testRSAKey(t, 2)).cert

	tests := []struct {
		name       string
		msg        []byte
		wantReason string
	}{
		{"wrong challenge", device.request(t, recipients, device.csr(t, "wrong-challenge")), "wrong, used or expired challenge"},
		{"no challenge", device.request(t, recipients, device.csr(t, "")), "wrong, used or expired challenge"},
		{"challenge prefix", device.request(t, recipients, device.csr(t, "right")), "wrong, used or expired challenge"},
		{"bad csr signature", device.request(t, recipients, badSig), "csr signature does not verify"},
		{"rsa 1024 key", device.request(t, recipients, makeCSR(t, weakKey, challenge)), "rsa key of 1024 bits"},
		{"ecdsa p-224 key", device.request(t, recipients, makeCSR(t, ecKey, challenge)), "unsupported ecdsa curve"},
		{"encrypted to another certificate", device.request(t, []*x509.Certificate{stranger}, device.csr(t, challenge)), "cannot decrypt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newSCEPFixture(t, pki, mustShared(t, challenge))
			resp, body := f.post(t, "operation=PKIOperation", tt.msg)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200 with a failure CertRep: %s", resp.StatusCode, body)
			}
			rep := certRep(t, body, pki.ra)
			if rep.PKIStatus != scep.FAILURE || rep.FailInfo != scep.BadRequest {
				t.Errorf("pkiStatus %v failInfo %v, want FAILURE badRequest", rep.PKIStatus, rep.FailInfo)
			}
			if n := f.issuer.issued.Load(); n != 0 {
				t.Errorf("issued %d certificates, want none", n)
			}
			logs := f.logs.String()
			if !strings.Contains(logs, tt.wantReason) {
				t.Errorf("logs lack reason %q:\n%s", tt.wantReason, logs)
			}
			if strings.Contains(logs, challenge) {
				t.Error("the challenge appears in the logs")
			}
		})
	}
}

func TestSCEPBadRequests(t *testing.T) {
	pki := newECDSAPKI(t)
	f := newSCEPFixture(t, pki, mustShared(t, "c"))
	device := newSCEPDevice(t, testRSAKey(t, 1))
	valid := device.request(t, []*x509.Certificate{pki.ra}, device.csr(t, "c"))
	tampered := bytes.Clone(valid)
	tampered[len(tampered)/2] ^= 0x01

	tests := []struct {
		name       string
		method     string
		query      string
		body       []byte
		wantStatus int
	}{
		{"garbage body", http.MethodPost, "operation=PKIOperation", []byte("hello, scep"), http.StatusBadRequest},
		{"empty body", http.MethodPost, "operation=PKIOperation", nil, http.StatusBadRequest},
		{"tampered message", http.MethodPost, "operation=PKIOperation", tampered, http.StatusBadRequest},
		{"oversized body", http.MethodPost, "operation=PKIOperation", bytes.Repeat([]byte{0x30}, MaxSCEPMessageSize+1), http.StatusBadRequest},
		{"get without message", http.MethodGet, "operation=PKIOperation", nil, http.StatusBadRequest},
		{"get with bad base64", http.MethodGet, "operation=PKIOperation&message=%%%21", nil, http.StatusBadRequest},
		{"get with garbage", http.MethodGet, "operation=PKIOperation&message=aGVsbG8=", nil, http.StatusBadRequest},
		{"no operation", http.MethodGet, "", nil, http.StatusBadRequest},
		{"unknown operation", http.MethodGet, "operation=GetNextCACert", nil, http.StatusBadRequest},
		{"GetCACert by POST", http.MethodPost, "operation=GetCACert", nil, http.StatusBadRequest},
		{"PUT", http.MethodPut, "operation=PKIOperation", valid, http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, f.srv.URL+PathSCEP+"?"+tt.query, bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := f.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d: %s", resp.StatusCode, tt.wantStatus, body)
			}
		})
	}
	if n := f.issuer.issued.Load(); n != 0 {
		t.Errorf("issued %d certificates for bad requests, want none", n)
	}
}

func TestSCEPOneTimeChallenge(t *testing.T) {
	ctx := context.Background()
	pki := newECDSAPKI(t)
	once := NewOneTimeChallenges(NewMemoryChallengeStore(), time.Hour)
	f := newSCEPFixture(t, pki, once)
	recipients := []*x509.Certificate{pki.ra}

	challenge, err := once.IssueChallenge(ctx, testNow)
	if err != nil {
		t.Fatal(err)
	}
	stale, err := once.IssueChallenge(ctx, testNow)
	if err != nil {
		t.Fatal(err)
	}
	first := newSCEPDevice(t, testRSAKey(t, 1))
	second := newSCEPDevice(t, testRSAKey(t, 2))

	tests := []struct {
		name       string
		at         time.Time
		msg        []byte
		wantStatus scep.PKIStatus
		wantIssued int64
	}{
		{"first use", testNow.Add(time.Minute), first.request(t, recipients, first.csr(t, challenge)), scep.SUCCESS, 1},
		{"reused by another device", testNow.Add(2 * time.Minute), second.request(t, recipients, second.csr(t, challenge)), scep.FAILURE, 1},
		{"reused by the same device", testNow.Add(3 * time.Minute), first.request(t, recipients, first.csr(t, challenge)), scep.FAILURE, 1},
		{"expired", testNow.Add(time.Hour), second.request(t, recipients, second.csr(t, stale)), scep.FAILURE, 1},
	}
	for _, tt := range tests {
		f.clock.set(tt.at)
		resp, body := f.post(t, "operation=PKIOperation", tt.msg)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d: %s", tt.name, resp.StatusCode, body)
		}
		if rep := certRep(t, body, pki.ra); rep.PKIStatus != tt.wantStatus {
			t.Errorf("%s: pkiStatus %v, want %v", tt.name, rep.PKIStatus, tt.wantStatus)
		}
		if n := f.issuer.issued.Load(); n != tt.wantIssued {
			t.Errorf("%s: issued %d, want %d", tt.name, n, tt.wantIssued)
		}
	}
	if logs := f.logs.String(); strings.Contains(logs, challenge) || strings.Contains(logs, stale) {
		t.Error("a challenge appears in the logs")
	}
}

func TestSCEPChallengeStoreDown(t *testing.T) {
	pki := newECDSAPKI(t)
	f := newSCEPFixture(t, pki, NewOneTimeChallenges(failingStore{}, time.Hour))
	device := newSCEPDevice(t, testRSAKey(t, 1))
	resp, _ := f.post(t, "operation=PKIOperation", device.request(t, []*x509.Certificate{pki.ra}, device.csr(t, "x")))
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("status = %d, want 500 so the device retries", resp.StatusCode)
	}
	if f.issuer.issued.Load() != 0 {
		t.Error("issued a certificate without checking the challenge")
	}
}

func TestNewSCEPHandlerValidates(t *testing.T) {
	ecPKI := newECDSAPKI(t)
	rsaPKI := newRSAPKI(t)
	shared := mustShared(t, "c")
	issuer := &countingIssuer{pki: ecPKI}
	clock := fixedClock{testNow}
	tests := []struct {
		name       string
		ca, ra     *x509.Certificate
		key        crypto.Signer
		challenges ChallengeVerifier
		wantErr    string // empty: valid
	}{
		{"separate RA", ecPKI.ca, ecPKI.ra, ecPKI.raKey, shared, ""},
		{"CA as RA", rsaPKI.ca, rsaPKI.ca, rsaPKI.raKey, shared, ""},
		{"ecdsa key as RA", ecPKI.ca, ecPKI.ca, ecPKI.caKey, shared, "want rsa"},
		{"key does not match RA", ecPKI.ca, ecPKI.ra, testRSAKey(t, 2), shared, "does not match"},
		{"RA not signed by CA", rsaPKI.ca, ecPKI.ra, ecPKI.raKey, shared, "not signed by ca"},
		{"nil key", ecPKI.ca, ecPKI.ra, nil, shared, "nil argument"},
		{"nil challenges", ecPKI.ca, ecPKI.ra, ecPKI.raKey, nil, "nil argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewSCEPHandler(tt.ca, tt.ra, tt.key, tt.challenges, issuer, clock)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("err = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// FuzzSCEPPKIOperation feeds arbitrary PKIOperation messages, by POST body
// and by GET parameter. The handler must answer 200 with a CertRep or 400,
// never panic, and never issue for a message without the right challenge.
func FuzzSCEPPKIOperation(f *testing.F) {
	pki := newECDSAPKI(f)
	fx := newSCEPFixture(f, pki, mustShared(f, "fuzz-challenge"))
	device := newSCEPDevice(f, testRSAKey(f, 1))
	f.Add(device.request(f, []*x509.Certificate{pki.ra}, device.csr(f, "fuzz-challenge")), false)
	f.Add(device.request(f, []*x509.Certificate{pki.ra}, device.csr(f, "wrong")), true)
	f.Add([]byte{}, false)
	f.Add([]byte("0\x82\x01\x00garbage"), true)
	f.Fuzz(func(t *testing.T, msg []byte, viaGet bool) {
		var req *http.Request
		if viaGet {
			req = httptest.NewRequest(http.MethodGet, PathSCEP+"?operation=PKIOperation&message="+url.QueryEscape(base64.StdEncoding.EncodeToString(msg)), nil)
		} else {
			req = httptest.NewRequest(http.MethodPost, PathSCEP+"?operation=PKIOperation", bytes.NewReader(msg))
		}
		rec := httptest.NewRecorder()
		fx.h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusBadRequest:
		case http.StatusOK:
			if ct := rec.Header().Get("Content-Type"); ct != ContentTypePKI {
				t.Fatalf("200 with Content-Type %q", ct)
			}
			if _, err := scep.ParsePKIMessage(rec.Body.Bytes(), scep.WithCACerts([]*x509.Certificate{pki.ra})); err != nil {
				t.Fatalf("200 with an unparsable CertRep: %v", err)
			}
		default:
			t.Fatalf("status %d", rec.Code)
		}
	})
}

// BenchmarkSCEPPKIOperation measures one enrollment: parse, RSA decrypt,
// challenge check, issue (ECDSA), encrypt and RSA-sign the CertRep.
func BenchmarkSCEPPKIOperation(b *testing.B) {
	pki := newECDSAPKI(b)
	fx := newSCEPFixture(b, pki, mustShared(b, "bench"))
	device := newSCEPDevice(b, testRSAKey(b, 1))
	benchPKIOperation(b, fx.h, device.request(b, []*x509.Certificate{pki.ra}, device.csr(b, "bench")))
}

// BenchmarkSCEPPKIOperationQuiet is BenchmarkSCEPPKIOperation with the
// handler's logger at warn, the load test's level: a successful enrolment
// writes no record.
func BenchmarkSCEPPKIOperationQuiet(b *testing.B) {
	pki := newECDSAPKI(b)
	fx := newSCEPFixture(b, pki, mustShared(b, "bench"))
	logger := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	h, err := NewSCEPHandler(pki.ca, pki.ra, pki.raKey, mustShared(b, "bench"), fx.issuer, fx.clock, WithSCEPLogger(logger))
	if err != nil {
		b.Fatal(err)
	}
	device := newSCEPDevice(b, testRSAKey(b, 1))
	benchPKIOperation(b, h, device.request(b, []*x509.Certificate{pki.ra}, device.csr(b, "bench")))
}

// benchPKIOperation posts the PKIOperation msg to h once per iteration.
func benchPKIOperation(b *testing.B, h http.Handler, msg []byte) {
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, PathSCEP+"?operation=PKIOperation", bytes.NewReader(msg))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}

// hugeRSAPublicKey returns an RSA public key of bits bits. It is not a real
// key (no private half); a hostile client does not need one to make the server
// verify a signature.
func hugeRSAPublicKey(tb testing.TB, bits int) *rsa.PublicKey {
	tb.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), uint(bits)))
	if err != nil {
		tb.Fatal(err)
	}
	n.SetBit(n, bits-1, 1)
	n.SetBit(n, 0, 1)
	return &rsa.PublicKey{N: n, E: 65537}
}

func TestSCEPRefusesHugeSignerKey(t *testing.T) {
	pki := newECDSAPKI(t)
	f := newSCEPFixture(t, pki, mustShared(t, "c"))
	device := newSCEPDevice(t, testRSAKey(t, 1))

	// The signer certificate claims a 12000-bit key; the signature is made
	// with the device's real key, so it cannot verify, but checking costs
	// CPU the server must not spend.
	nb, na := certValidity()
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: "SCEP SIGNER"},
		NotBefore:    nb,
		NotAfter:     na,
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, hugeRSAPublicKey(t, 12000), device.key)
	if err != nil {
		t.Fatal(err)
	}
	huge, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	device.cert = huge
	resp, body := f.post(t, "operation=PKIOperation", device.request(t, []*x509.Certificate{pki.ra}, device.csr(t, "c")))
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "at most 8192") {
		t.Errorf("status %d %q, want 400 refusing the key size", resp.StatusCode, body)
	}
	if f.issuer.issued.Load() != 0 {
		t.Error("issued a certificate")
	}
}

func TestCheckCSRKeys(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	parse := func(der []byte) *x509.CertificateRequest {
		csr, err := x509.ParseCertificateRequest(der)
		if err != nil {
			t.Fatal(err)
		}
		return csr
	}
	tests := []struct {
		name    string
		csr     *x509.CertificateRequest
		wantErr string // empty: accepted
	}{
		{"rsa 2048", parse(makeCSR(t, testRSAKey(t, 1), "c")), ""},
		{"ecdsa p-256", parse(makeCSR(t, ecKey, "c")), ""},
		{"rsa 12000, checked before the signature", &x509.CertificateRequest{PublicKey: hugeRSAPublicKey(t, 12000)}, "want 2048 to 8192"},
		{"no key", &x509.CertificateRequest{}, "unsupported key type"},
	}
	for _, tt := range tests {
		_, err := checkCSR(tt.csr)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: checkCSR = %v, want nil", tt.name, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: checkCSR = %v, want error containing %q", tt.name, err, tt.wantErr)
		}
	}
}

// BenchmarkSCEPPathologicalBER measures the worst input known: an
// indefinite-length SEQUENCE of empty OCTET STRINGs at the size cap, on which
// the pkcs7 BER-to-DER step is quadratic. It bounds what one request costs.
func BenchmarkSCEPPathologicalBER(b *testing.B) {
	pki := newECDSAPKI(b)
	fx := newSCEPFixture(b, pki, mustShared(b, "bench"))
	msg := append([]byte{0x30, 0x80}, bytes.Repeat([]byte{0x04, 0x00}, (MaxSCEPMessageSize-2)/2)...)
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, PathSCEP+"?operation=PKIOperation", bytes.NewReader(msg))
		rec := httptest.NewRecorder()
		fx.h.ServeHTTP(rec, req)
		if rec.Code != http.StatusBadRequest {
			b.Fatal(rec.Code)
		}
	}
}

// BenchmarkSCEPGetCA measures the two GETs a device makes before its
// PKIOperation: GetCACaps and GetCACert.
func BenchmarkSCEPGetCA(b *testing.B) {
	fx := newSCEPFixture(b, newECDSAPKI(b), mustShared(b, "bench"))
	b.ReportAllocs()
	for b.Loop() {
		for _, op := range []string{"GetCACaps", "GetCACert"} {
			rec := httptest.NewRecorder()
			fx.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, PathSCEP+"?operation="+op, nil))
			if rec.Code != http.StatusOK {
				b.Fatal(rec.Code)
			}
		}
	}
}
