package enrollment

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/smallstep/pkcs7"
)

// switchableTopic is a TopicSource whose topic the test changes.
type switchableTopic struct {
	mu    sync.Mutex
	topic string
	err   error
}

func (s *switchableTopic) PushTopic(context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.topic, s.err
}

func (s *switchableTopic) set(topic string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.topic, s.err = topic, err
}

type profileFixture struct {
	srv    *httptest.Server
	signer *pkcs7ProfileSigner
	topic  *switchableTopic
	pki    *testPKI
}

func newProfileFixture(t *testing.T, challenges ChallengeIssuer, opts ...ProfileOption) *profileFixture {
	t.Helper()
	pki := newECDSAPKI(t)
	f := &profileFixture{
		signer: &pkcs7ProfileSigner{cert: pki.ca, key: pki.caKey},
		topic:  &switchableTopic{topic: testTopic},
		pki:    pki,
	}
	h, err := NewProfileHandler(ProfileConfig{PublicURL: "https://mdm.example.org", CACert: pki.ca},
		f.topic, challenges, f.signer, fixedClock{testNow}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(PathEnroll, h)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// do fetches the profile; it returns status, headers and body.
func (f *profileFixture) do(t *testing.T, method, query string, user, pass string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+PathEnroll+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" || pass != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

// openSigned verifies the CMS signature against the CA and returns the profile.
func openSigned(t *testing.T, signed []byte, pki *testPKI) decoded {
	t.Helper()
	p7, err := pkcs7.Parse(signed)
	if err != nil {
		t.Fatalf("parse signed profile: %v", err)
	}
	if err := p7.Verify(); err != nil {
		t.Fatalf("verify signed profile: %v", err)
	}
	if signer := p7.GetOnlySigner(); signer == nil || !signer.Equal(pki.ca) {
		t.Fatalf("profile not signed by the expected certificate")
	}
	return decodeProfile(t, p7.Content)
}

func TestProfileHandlerServesSignedProfile(t *testing.T) {
	shared, err := NewSharedChallenge("shared-secret-challenge")
	if err != nil {
		t.Fatal(err)
	}
	f := newProfileFixture(t, shared)
	status, hdr, body := f.do(t, http.MethodGet, "", "", "")
	if status != http.StatusOK {
		t.Fatalf("status = %d, want 200: %s", status, body)
	}
	tests := []struct{ key, want string }{
		{"Content-Type", "application/x-apple-aspen-config"},
		{"Content-Disposition", `attachment; filename="sundial-enroll.mobileconfig"`},
		{"Cache-Control", "no-store"},
	}
	for _, tt := range tests {
		if have := hdr.Get(tt.key); have != tt.want {
			t.Errorf("%s = %q, want %q", tt.key, have, tt.want)
		}
	}
	d := openSigned(t, body, f.pki)
	mdm := payloadOfType(t, d, PayloadTypeMDM)
	scepC := payloadOfType(t, d, PayloadTypeSCEP)["PayloadContent"].(map[string]any)
	if mdm["Topic"] != testTopic {
		t.Errorf("Topic = %v, want %s", mdm["Topic"], testTopic)
	}
	if scepC["Challenge"] != "shared-secret-challenge" {
		t.Errorf("Challenge = %v, want the shared challenge", scepC["Challenge"])
	}
}

func TestProfileHandlerCachesUntilTopicChanges(t *testing.T) {
	shared, _ := NewSharedChallenge("c")
	f := newProfileFixture(t, shared)

	_, _, first := f.do(t, http.MethodGet, "", "", "")
	_, _, second := f.do(t, http.MethodGet, "", "", "")
	if f.signer.calls.Load() != 1 {
		t.Errorf("signer called %d times for two downloads, want 1", f.signer.calls.Load())
	}
	if !bytes.Equal(first, second) {
		t.Error("cached profile differs from the first one")
	}

	f.topic.set("com.apple.mgmt.External.new-topic", nil)
	status, _, third := f.do(t, http.MethodGet, "", "", "")
	if status != http.StatusOK {
		t.Fatalf("status = %d after topic change", status)
	}
	if f.signer.calls.Load() != 2 {
		t.Errorf("signer called %d times after a topic change, want 2", f.signer.calls.Load())
	}
	if topic := payloadOfType(t, openSigned(t, third, f.pki), PayloadTypeMDM)["Topic"]; topic != "com.apple.mgmt.External.new-topic" {
		t.Errorf("Topic after change = %v", topic)
	}
}

func TestProfileHandlerTopicUnavailable(t *testing.T) {
	shared, _ := NewSharedChallenge("c")
	f := newProfileFixture(t, shared)
	f.topic.set("", errors.New("no push certificate"))
	status, hdr, body := f.do(t, http.MethodGet, "", "", "")
	if status != http.StatusServiceUnavailable {
		t.Errorf("status = %d, want 503", status)
	}
	if hdr.Get("Content-Disposition") != "" {
		t.Error("error response offers a profile download")
	}
	if f.signer.calls.Load() != 0 {
		t.Error("signed a profile without a topic")
	}
	if bytes.Contains(body, []byte("no push certificate")) {
		t.Error("internal error text leaked to the client")
	}

	f.topic.set("not-an-apple-topic", nil)
	if status, _, _ := f.do(t, http.MethodGet, "", "", ""); status != http.StatusInternalServerError {
		t.Errorf("status with invalid topic = %d, want 500", status)
	}
}

func TestProfileHandlerOneTimeChallenges(t *testing.T) {
	store := NewMemoryChallengeStore()
	once := NewOneTimeChallenges(store, 0)
	f := newProfileFixture(t, once)

	var challenges []string
	for range 2 {
		status, _, body := f.do(t, http.MethodGet, "", "", "")
		if status != http.StatusOK {
			t.Fatalf("status = %d", status)
		}
		c := payloadOfType(t, openSigned(t, body, f.pki), PayloadTypeSCEP)["PayloadContent"].(map[string]any)["Challenge"].(string)
		challenges = append(challenges, c)
	}
	if challenges[0] == challenges[1] {
		t.Fatal("two downloads got the same one-time challenge")
	}
	if f.signer.calls.Load() != 2 {
		t.Errorf("signer called %d times, want once per download", f.signer.calls.Load())
	}
	for _, c := range challenges {
		if ok, err := once.VerifyChallenge(context.Background(), c, testNow); !ok || err != nil {
			t.Errorf("served challenge not accepted: %v, %v", ok, err)
		}
	}
	// HEAD mints nothing.
	if status, _, _ := f.do(t, http.MethodHead, "", "", ""); status != http.StatusOK {
		t.Errorf("HEAD status = %d", status)
	}
	if store.Len() != 0 {
		t.Errorf("HEAD left %d challenges in the store, want 0", store.Len())
	}
}

func TestProfileHandlerEnrollmentSecret(t *testing.T) {
	shared, _ := NewSharedChallenge("c")
	f := newProfileFixture(t, shared, WithEnrollmentSecret("open sesame"))
	tests := []struct {
		name        string
		method      string
		query       string
		user, pass  string
		wantStatus  int
		wantProfile bool
	}{
		{"no secret", http.MethodGet, "", "", "", http.StatusUnauthorized, false},
		{"wrong query", http.MethodGet, "?secret=open", "", "", http.StatusUnauthorized, false},
		{"longer query", http.MethodGet, "?secret=open+sesame+please", "", "", http.StatusUnauthorized, false},
		{"right query", http.MethodGet, "?secret=open+sesame", "", "", http.StatusOK, true},
		{"right basic auth", http.MethodGet, "", "anyone", "open sesame", http.StatusOK, true},
		{"wrong basic auth", http.MethodGet, "", "open sesame", "nope", http.StatusUnauthorized, false},
		{"head without secret", http.MethodHead, "", "", "", http.StatusUnauthorized, false},
		{"post refused", http.MethodPost, "?secret=open+sesame", "", "", http.StatusMethodNotAllowed, false},
		{"put refused", http.MethodPut, "", "", "", http.StatusMethodNotAllowed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, hdr, body := f.do(t, tt.method, tt.query, tt.user, tt.pass)
			if status != tt.wantStatus {
				t.Errorf("status = %d, want %d", status, tt.wantStatus)
			}
			if status == http.StatusUnauthorized {
				if !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Basic ") {
					t.Errorf("401 without a Basic challenge: %q", hdr.Get("WWW-Authenticate"))
				}
				if tt.method != http.MethodHead && strings.TrimSpace(string(body)) != "unauthorized" {
					t.Errorf("401 body = %q, want only \"unauthorized\"", body)
				}
			}
			if status == http.StatusMethodNotAllowed && hdr.Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow = %q", hdr.Get("Allow"))
			}
			if got := len(body) > 0 && hdr.Get("Content-Type") == ProfileContentType; got != tt.wantProfile {
				t.Errorf("served a profile = %v, want %v", got, tt.wantProfile)
			}
		})
	}
}

func TestNewProfileHandlerRefusesBadConfig(t *testing.T) {
	pki := newECDSAPKI(t)
	shared, _ := NewSharedChallenge("c")
	signer := &pkcs7ProfileSigner{cert: pki.ca, key: pki.caKey}
	good := ProfileConfig{PublicURL: "https://mdm.example.org", CACert: pki.ca}
	tests := []struct {
		name   string
		cfg    ProfileConfig
		signer ProfileSigner
	}{
		{"http url", ProfileConfig{PublicURL: "http://mdm.example.org", CACert: pki.ca}, signer},
		{"no ca", ProfileConfig{PublicURL: "https://mdm.example.org"}, signer},
		{"nil signer", good, nil},
	}
	for _, tt := range tests {
		if _, err := NewProfileHandler(tt.cfg, StaticTopic(testTopic), shared, tt.signer, fixedClock{testNow}); err == nil {
			t.Errorf("%s: NewProfileHandler succeeded, want error", tt.name)
		}
	}
	if _, err := NewProfileHandler(good, StaticTopic(testTopic), shared, signer, fixedClock{testNow}); err != nil {
		t.Errorf("good config refused: %v", err)
	}
}

func BenchmarkProfileHandlerCached(b *testing.B) {
	pki := newECDSAPKI(b)
	shared, _ := NewSharedChallenge("c")
	h, err := NewProfileHandler(ProfileConfig{PublicURL: "https://mdm.example.org", CACert: pki.ca},
		StaticTopic(testTopic), shared, &pkcs7ProfileSigner{cert: pki.ca, key: pki.caKey}, fixedClock{testNow})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, PathEnroll, nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}

func BenchmarkProfileHandlerOneTime(b *testing.B) {
	pki := newECDSAPKI(b)
	h, err := NewProfileHandler(ProfileConfig{PublicURL: "https://mdm.example.org", CACert: pki.ca},
		StaticTopic(testTopic), NewOneTimeChallenges(NewMemoryChallengeStore(), 0),
		&pkcs7ProfileSigner{cert: pki.ca, key: pki.caKey}, fixedClock{testNow})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, PathEnroll, nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}
