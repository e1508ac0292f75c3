package depmock_test

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sundial-mdm/sundial/enrollment/ade/depmock"
)

func do(t *testing.T, srv *httptest.Server, method, path, session, auth string, body any) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, srv.URL+path, rd)
	if session != "" {
		req.Header.Set("X-ADM-Auth-Session", session)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestSessionAndCursorErrors(t *testing.T) {
	m := depmock.New()
	m.Seed("S", 3)
	srv := httptest.NewTLSServer(m)
	defer srv.Close()
	tok := m.Tokens()
	if status, body := do(t, srv, "GET", "/session", "", `OAuth oauth_consumer_key="wrong"`, nil); status != 401 || body != depmock.ErrTokenRejected {
		t.Errorf("bad oauth = %d %s", status, body)
	}
	if status, _ := do(t, srv, "POST", "/server/devices", "nope", "", map[string]any{}); status != 403 {
		t.Errorf("unknown session = %d", status)
	}
	auth := `OAuth oauth_consumer_key="` + tok.ConsumerKey + `", oauth_token="` + tok.AccessToken +
		`", oauth_signature_method="HMAC-SHA1", oauth_signature="x%3D"`
	status, body := do(t, srv, "GET", "/session", "", auth, nil)
	var s struct {
		AuthSessionToken string `json:"auth_session_token"`
	}
	if status != 200 || json.Unmarshal([]byte(body), &s) != nil || s.AuthSessionToken == "" {
		t.Fatalf("session = %d %s", status, body)
	}
	sess := s.AuthSessionToken
	var page struct {
		Devices      []depmock.Device `json:"devices"`
		Cursor       string           `json:"cursor"`
		MoreToFollow bool             `json:"more_to_follow"`
	}
	_, body = do(t, srv, "POST", "/server/devices", sess, "", map[string]any{"limit": 2})
	json.Unmarshal([]byte(body), &page)
	if len(page.Devices) != 2 || !page.MoreToFollow {
		t.Fatalf("first page = %s", body)
	}
	_, body = do(t, srv, "POST", "/server/devices", sess, "", map[string]any{"limit": 2, "cursor": page.Cursor})
	json.Unmarshal([]byte(body), &page)
	if len(page.Devices) != 1 || page.MoreToFollow {
		t.Fatalf("last page = %s", body)
	}
	if status, body := do(t, srv, "POST", "/server/devices", sess, "", map[string]any{"cursor": page.Cursor}); status != 400 || !strings.Contains(body, depmock.ErrExhaustedCursor) {
		t.Errorf("exhausted = %d %s", status, body)
	}
	if status, body := do(t, srv, "POST", "/devices/sync", sess, "", map[string]any{"cursor": "garbage!"}); status != 400 || !strings.Contains(body, depmock.ErrInvalidCursor) {
		t.Errorf("invalid = %d %s", status, body)
	}
	m.ExpireCursors()
	if status, body := do(t, srv, "POST", "/devices/sync", sess, "", map[string]any{"cursor": page.Cursor}); status != 400 || !strings.Contains(body, depmock.ErrExpiredCursor) {
		t.Errorf("expired = %d %s", status, body)
	}
	m.RateLimit("/account", 1, 0)
	if status, _ := do(t, srv, "GET", "/account", sess, "", nil); status != 429 {
		t.Errorf("rate limit = %d", status)
	}
	if status, _ := do(t, srv, "GET", "/account", sess, "", nil); status != 200 {
		t.Errorf("account after rate limit = %d", status)
	}
}

func TestServerTokenEndpoint(t *testing.T) {
	m := depmock.New()
	srv := httptest.NewTLSServer(m)
	defer srv.Close()
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	resp, err := srv.Client().Post(srv.URL+"/mock/server-token", "application/x-pem-file", bytes.NewReader(cert))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.HasPrefix(b, []byte("Content-Type: application/pkcs7-mime")) {
		t.Errorf("token = %d %.80q", resp.StatusCode, b)
	}
	if status, _ := do(t, srv, "POST", "/mock/server-token", "", "", "not pem"); status != 400 {
		t.Errorf("garbage = %d", status)
	}
}

func TestInjectEndpoint(t *testing.T) {
	m := depmock.New()
	srv := httptest.NewTLSServer(m)
	defer srv.Close()
	if status, _ := do(t, srv, "POST", "/mock/inject?error=bogus", "", "", nil); status != 400 {
		t.Errorf("bogus inject = %d", status)
	}
	if status, _ := do(t, srv, "POST", "/mock/inject?error=rate_limit&n=1", "", "", nil); status != 204 {
		t.Fatalf("inject = %d", status)
	}
	if status, _ := do(t, srv, "GET", "/account", "", "", nil); status != 429 {
		t.Errorf("after rate_limit inject = %d, want 429", status)
	}
	if status, _ := do(t, srv, "POST", "/mock/inject?error=token_expired", "", "", nil); status != 204 {
		t.Fatal("token_expired inject failed")
	}
	tok := m.Tokens()
	auth := `OAuth oauth_consumer_key="` + tok.ConsumerKey + `", oauth_token="` + tok.AccessToken +
		`", oauth_signature_method="HMAC-SHA1", oauth_signature="x"`
	if status, body := do(t, srv, "GET", "/session", "", auth, nil); status != 403 || body != depmock.ErrTokenExpired {
		t.Errorf("session after token_expired = %d %s", status, body)
	}
}
