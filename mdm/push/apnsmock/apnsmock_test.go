package apnsmock_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/sundial-mdm/sundial/mdm/push/apnsmock"
	"github.com/sundial-mdm/sundial/mdm/push/internal/testcert"
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

// client returns an HTTP/2-only client presenting cert and trusting ts.
func client(t testing.TB, ts *httptest.Server, cert tls.Certificate) *http.Client {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(ts.Certificate())
	tr := &http2.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: roots}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

type answer struct {
	status int
	reason string
	id     string
	ts     int64
}

func do(t testing.TB, c *http.Client, method, url string, hdr map[string]string, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Errorf("answered over %s, want HTTP/2", resp.Proto)
	}
	a := answer{status: resp.StatusCode, id: resp.Header.Get("apns-id")}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		var body struct {
			Reason    string `json:"reason"`
			Timestamp int64  `json:"timestamp"`
		}
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Fatalf("error body %q: %v", raw, err)
		}
		a.reason, a.ts = body.Reason, body.Timestamp
	} else if len(raw) != 0 {
		t.Errorf("200 with body %q, want empty", raw)
	}
	return a
}

func TestRequests(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	ca := testcert.NewCA(t)
	topic := testcert.Topic(t)
	cert := ca.PushCert(t, topic, now.Add(-time.Hour), now.Add(time.Hour))
	mock := apnsmock.New(apnsmock.WithClock(fixedClock{now}))
	ts := apnsmock.NewTestServer(mock, ca.Pool())
	defer ts.Close()
	c := client(t, ts, cert)

	token := testcert.Token(t)
	gone := testcert.Token(t)
	mock.FailToken(gone, http.StatusGone, apnsmock.ReasonUnregistered)
	path := "/3/device/" + hex.EncodeToString(token)
	good := map[string]string{"apns-push-type": "mdm", "apns-topic": topic, "apns-priority": "10"}
	with := func(k, v string) map[string]string {
		h := map[string]string{}
		for k, v := range good {
			h[k] = v
		}
		h[k] = v
		return h
	}
	const payload = `{"mdm":"magic"}`
	tests := []struct {
		name       string
		method     string
		path       string
		hdr        map[string]string
		body       string
		wantStatus int
		wantReason string
	}{
		{"ok", "POST", path, good, payload, 200, ""},
		{"ok without optional headers", "POST", path, nil, payload, 200, ""},
		{"get", "GET", path, good, "", 405, apnsmock.ReasonMethodNotAllowed},
		{"other path", "POST", "/3/other/" + hex.EncodeToString(token), good, payload, 404, apnsmock.ReasonBadPath},
		{"no token", "POST", "/3/device/", good, payload, 400, apnsmock.ReasonMissingDeviceToken},
		{"token not hex", "POST", "/3/device/xyz", good, payload, 400, apnsmock.ReasonBadDeviceToken},
		{"other topic", "POST", path, with("apns-topic", "com.apple.mgmt.External.other"), payload, 400, apnsmock.ReasonBadTopic},
		{"alert push type", "POST", path, with("apns-push-type", "alert"), payload, 400, apnsmock.ReasonInvalidPushType},
		{"bad priority", "POST", path, with("apns-priority", "7"), payload, 400, apnsmock.ReasonBadPriority},
		{"bad expiration", "POST", path, with("apns-expiration", "soon"), payload, 400, apnsmock.ReasonBadExpirationDate},
		{"bad apns-id", "POST", path, with("apns-id", "not-a-uuid"), payload, 400, apnsmock.ReasonBadMessageID},
		{"empty payload", "POST", path, good, "", 400, apnsmock.ReasonPayloadEmpty},
		{"payload too large", "POST", path, good, `{"mdm":"` + strings.Repeat("a", apnsmock.MaxPayload) + `"}`, 413, apnsmock.ReasonPayloadTooLarge},
		{"aps payload", "POST", path, good, `{"aps":{"alert":"hi"},"mdm":"magic"}`, 400, apnsmock.ReasonBadPayload},
		{"no mdm key", "POST", path, good, `{"magic":"x"}`, 400, apnsmock.ReasonBadPayload},
		{"unregistered", "POST", "/3/device/" + hex.EncodeToString(gone), good, payload, 410, apnsmock.ReasonUnregistered},
		{"unregistered, upper-case hex", "POST", "/3/device/" + strings.ToUpper(hex.EncodeToString(gone)), good, payload, 410, apnsmock.ReasonUnregistered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := do(t, c, tt.method, ts.URL+tt.path, tt.hdr, tt.body)
			if got.status != tt.wantStatus || got.reason != tt.wantReason {
				t.Errorf("got %d %q, want %d %q", got.status, got.reason, tt.wantStatus, tt.wantReason)
			}
			if got.id == "" {
				t.Error("no apns-id header")
			}
			if tt.wantStatus == http.StatusGone && got.ts != now.UnixMilli() {
				t.Errorf("410 timestamp %d, want %d", got.ts, now.UnixMilli())
			}
		})
	}

	st := mock.Stats()
	if st.Delivered != 2 || mock.Delivered(token) != 2 {
		t.Errorf("delivered %d (to token %d), want 2", st.Delivered, mock.Delivered(token))
	}
	if st.Requests != uint64(len(tests)) {
		t.Errorf("requests %d, want %d", st.Requests, len(tests))
	}
	if st.ByReason[apnsmock.ReasonBadPayload] != 2 || st.ByStatus[http.StatusBadRequest] != 10 || st.ByStatus[http.StatusGone] != 2 {
		t.Errorf("by reason %v, by status %v", st.ByReason, st.ByStatus)
	}
	pushes := mock.Pushes()
	if len(pushes) != 2 {
		t.Fatalf("recorded %d pushes, want 2", len(pushes))
	}
	want := apnsmock.Push{Token: token, Topic: topic, PushMagic: "magic", PushType: "mdm", Priority: "10", TopicHeader: topic, Body: []byte(payload), At: now}
	have := pushes[0]
	have.ID = ""
	if !pushEqual(have, want) {
		t.Errorf("push = %+v, want %+v", have, want)
	}
}

func pushEqual(a, b apnsmock.Push) bool {
	return bytes.Equal(a.Token, b.Token) && a.Topic == b.Topic && a.PushMagic == b.PushMagic &&
		a.PushType == b.PushType && a.Priority == b.Priority && a.TopicHeader == b.TopicHeader &&
		a.ID == b.ID && bytes.Equal(a.Body, b.Body) && a.At.Equal(b.At)
}

func TestClientCertificates(t *testing.T) {
	now := time.Now()
	ca := testcert.NewCA(t)
	other := testcert.NewCA(t)
	topic := testcert.Topic(t)
	tests := []struct {
		name       string
		clientCAs  *x509.CertPool
		cert       tls.Certificate
		wantStatus int // 0: handshake refused
	}{
		{"verified", ca.Pool(), ca.ValidPushCert(t, topic), 200},
		{"unknown ca", ca.Pool(), other.ValidPushCert(t, topic), 0},
		{"any ca accepted", nil, other.ValidPushCert(t, topic), 200},
		{"expired", nil, ca.PushCert(t, topic, now.Add(-2*time.Hour), now.Add(-time.Hour)), 403},
		{"no uid", nil, ca.ValidPushCert(t, ""), 403},
		{"uid not a push topic", nil, ca.ValidPushCert(t, "com.example.app"), 403},
		{"no client certificate", nil, tls.Certificate{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mock := apnsmock.New()
			ts := apnsmock.NewTestServer(mock, tt.clientCAs)
			defer ts.Close()
			c := client(t, ts, tt.cert)
			req, _ := http.NewRequest("POST", ts.URL+"/3/device/"+hex.EncodeToString(testcert.Token(t)), strings.NewReader(`{"mdm":"m"}`))
			resp, err := c.Do(req)
			if tt.wantStatus == 0 {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("request succeeded with status %d, want the handshake refused", resp.StatusCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("request: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
		})
	}
}

func TestFailuresLatencyAndReset(t *testing.T) {
	ca := testcert.NewCA(t)
	topic := testcert.Topic(t)
	mock := apnsmock.New()
	ts := apnsmock.NewTestServer(mock, nil)
	defer ts.Close()
	c := client(t, ts, ca.ValidPushCert(t, topic))
	a, b := testcert.Token(t), testcert.Token(t)
	url := func(tok []byte) string { return ts.URL + "/3/device/" + hex.EncodeToString(tok) }
	const body = `{"mdm":"m"}`

	mock.SetFailure(http.StatusServiceUnavailable, apnsmock.ReasonServiceUnavailable)
	mock.FailToken(a, http.StatusTooManyRequests, apnsmock.ReasonTooManyRequests)
	steps := []struct {
		tok        []byte
		wantStatus int
	}{{a, 429}, {b, 503}}
	for _, s := range steps {
		if got := do(t, c, "POST", url(s.tok), nil, body); got.status != s.wantStatus {
			t.Errorf("status %d, want %d", got.status, s.wantStatus)
		}
	}
	mock.ClearToken(a)
	if got := do(t, c, "POST", url(a), nil, body); got.status != 503 {
		t.Errorf("after ClearToken: status %d, want the global 503", got.status)
	}
	mock.SetFailure(0, "")
	if got := do(t, c, "POST", url(a), nil, body); got.status != 200 {
		t.Errorf("after SetFailure(0): status %d, want 200", got.status)
	}

	const delay = 150 * time.Millisecond
	mock.SetLatency(delay)
	start := time.Now()
	do(t, c, "POST", url(b), nil, body)
	if el := time.Since(start); el < delay {
		t.Errorf("answer took %v, want >= %v", el, delay)
	}

	mock.Reset()
	if st := mock.Stats(); st.Requests != 0 || len(mock.Pushes()) != 0 || mock.Delivered(a) != 0 {
		t.Errorf("after Reset: stats %+v, %d pushes", st, len(mock.Pushes()))
	}
	start = time.Now()
	if got := do(t, c, "POST", url(a), nil, body); got.status != 200 || time.Since(start) >= delay {
		t.Errorf("after Reset: status %d in %v, want 200 with no delay", got.status, time.Since(start))
	}
}

func TestSubscribeAndBuffer(t *testing.T) {
	ca := testcert.NewCA(t)
	mock := apnsmock.New(apnsmock.WithBuffer(3))
	ts := apnsmock.NewTestServer(mock, nil)
	defer ts.Close()
	c := client(t, ts, ca.ValidPushCert(t, testcert.Topic(t)))
	token := testcert.Token(t)
	woke := make(chan struct{}, 10)
	cancel := mock.Subscribe(token, func() { woke <- struct{}{} })

	for i := range 5 {
		magic := string(rune('a' + i))
		if got := do(t, c, "POST", ts.URL+"/3/device/"+hex.EncodeToString(token), nil, `{"mdm":"`+magic+`"}`); got.status != 200 {
			t.Fatalf("status %d", got.status)
		}
	}
	for range 5 {
		select {
		case <-woke:
		case <-time.After(5 * time.Second):
			t.Fatal("subscriber not called for every push")
		}
	}
	var magics []string
	for _, p := range mock.Pushes() {
		magics = append(magics, p.PushMagic)
	}
	if got, want := strings.Join(magics, ","), "c,d,e"; got != want {
		t.Errorf("buffer holds %s, want the last three %s", got, want)
	}
	if got := mock.Delivered(token); got != 5 {
		t.Errorf("Delivered = %d, want 5", got)
	}

	cancel()
	do(t, c, "POST", ts.URL+"/3/device/"+hex.EncodeToString(token), nil, `{"mdm":"f"}`)
	select {
	case <-woke:
		t.Error("subscriber called after cancel")
	case <-time.After(100 * time.Millisecond):
	}
}

func TestListenAndServe(t *testing.T) {
	ca := testcert.NewCA(t)
	// The server certificate: any certificate the client trusts.
	serverCert := ca.ValidPushCert(t, testcert.Topic(t))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- apnsmock.ListenAndServe(ctx, addr, serverCert, ca.Pool(), nil) }()

	cert := ca.ValidPushCert(t, testcert.Topic(t))
	roots := ca.Pool()
	tr := &http2.Transport{TLSClientConfig: &tls.Config{
		Certificates: []tls.Certificate{cert}, RootCAs: roots,
		// The test server certificate has no SANs; check the chain only.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
			return err
		},
	}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	var resp *http.Response
	for i := 0; ; i++ {
		req, _ := http.NewRequest("POST", "https://"+addr+"/3/device/"+hex.EncodeToString(testcert.Token(t)), strings.NewReader(`{"mdm":"m"}`))
		resp, err = c.Do(req)
		if err == nil || i == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond) // the server may not be listening yet
	}
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		t.Errorf("got %s %d, want HTTP/2 200", resp.Proto, resp.StatusCode)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ListenAndServe: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ListenAndServe did not return after cancel")
	}

	// A busy address is an error, not a hang.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	if err := apnsmock.ListenAndServe(t.Context(), busy.Addr().String(), serverCert, nil, nil); err == nil {
		t.Error("ListenAndServe on a busy address succeeded")
	}
}

func TestTopicFromCertificate(t *testing.T) {
	ca := testcert.NewCA(t)
	topic := testcert.Topic(t)
	tests := []struct {
		name    string
		uid     string
		want    string
		wantErr bool
	}{
		{"push topic", topic, topic, false},
		{"no uid", "", "", true},
		{"not mdm", "com.example.app", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert := ca.ValidPushCert(t, tt.uid)
			got, err := apnsmock.TopicFromCertificate(cert.Leaf)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("got %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParsePayload(t *testing.T) {
	tests := []struct {
		have    string
		want    string
		wantErr bool
	}{
		{`{"mdm":"3F2504E0-4F89-11D3-9A0C-0305E82C3301"}`, "3F2504E0-4F89-11D3-9A0C-0305E82C3301", false},
		{` { "mdm" : "x" } `, "x", false},
		{`{"mdm":""}`, "", true},
		{`{"mdm":1}`, "", true},
		{`{"aps":{},"mdm":"x"}`, "", true},
		{`["mdm"]`, "", true},
		{`{"mdm":"x"`, "", true},
		{`null`, "", true},
	}
	for _, tt := range tests {
		got, err := apnsmock.ParsePayload([]byte(tt.have))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParsePayload(%s) = %q, %v; want %q, error %v", tt.have, got, err, tt.want, tt.wantErr)
		}
	}
}

func FuzzParsePayload(f *testing.F) {
	for _, s := range []string{`{"mdm":"x"}`, `{"aps":{}}`, `{"mdm":"\u0000"}`, `[]`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		magic, err := apnsmock.ParsePayload(body)
		if err != nil {
			return
		}
		if magic == "" {
			t.Fatalf("accepted %q with an empty magic", body)
		}
		// An accepted payload is a JSON object whose mdm value is magic.
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("accepted %q, which is not JSON: %v", body, err)
		}
		if _, ok := m["aps"]; ok {
			t.Fatalf("accepted %q with aps", body)
		}
	})
}

// FuzzServeHTTP feeds arbitrary paths, headers and bodies to the handler: it
// must answer a valid APNs status with a JSON reason, never panic.
func FuzzServeHTTP(f *testing.F) {
	f.Add("POST", "/3/device/00ff", "mdm", "10", `{"mdm":"x"}`)
	f.Add("POST", "/3/device/", "", "", ``)
	f.Add("GET", "/3/device/zz", "alert", "7", `{"aps":1}`)
	ca := testcert.NewCA(f)
	leaf := ca.ValidPushCert(f, testcert.Topic(f)).Leaf
	mock := apnsmock.New(apnsmock.WithBuffer(16))
	f.Fuzz(func(t *testing.T, method, path, pushType, priority, body string) {
		if !validMethod(method) || !strings.HasPrefix(path, "/") {
			return
		}
		req := httptest.NewRequest(method, "https://apns.test/", strings.NewReader(body))
		req.URL.Path = path
		req.Header.Set("apns-push-type", pushType)
		req.Header.Set("apns-priority", priority)
		req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}
		rec := httptest.NewRecorder()
		mock.ServeHTTP(rec, req)
		switch rec.Code {
		case 200:
			if rec.Body.Len() != 0 {
				t.Fatalf("200 with body %q", rec.Body)
			}
		case 400, 403, 404, 405, 413:
			var r struct{ Reason string }
			if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil || r.Reason == "" {
				t.Fatalf("%d with body %q: %v", rec.Code, rec.Body, err)
			}
		default:
			t.Fatalf("unexpected status %d", rec.Code)
		}
	})
}

func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, c := range m {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}

func BenchmarkServeHTTP(b *testing.B) {
	ca := testcert.NewCA(b)
	leaf := ca.ValidPushCert(b, testcert.Topic(b)).Leaf
	mock := apnsmock.New()
	path := "/3/device/" + hex.EncodeToString(testcert.Token(b))
	state := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("POST", "https://apns.test"+path, strings.NewReader(`{"mdm":"3F2504E0-4F89-11D3-9A0C-0305E82C3301"}`))
		req.Header.Set("apns-push-type", "mdm")
		req.TLS = state
		rec := httptest.NewRecorder()
		mock.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("status %d", rec.Code)
		}
	}
}
