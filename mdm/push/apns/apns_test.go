package apns_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sundial-mdm/sundial/internal/cputime"
	"github.com/sundial-mdm/sundial/mdm/push"
	"github.com/sundial-mdm/sundial/mdm/push/apns"
	"github.com/sundial-mdm/sundial/mdm/push/apnsmock"
	"github.com/sundial-mdm/sundial/mdm/push/internal/testcert"
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

// env is a mock APNs server and a sender trusting it.
type env struct {
	mock   *apnsmock.Server
	ts     *httptest.Server
	sender *apns.Sender
	topic  string
	conns  *atomic.Int64
}

func newEnv(t testing.TB, opts ...apns.Option) *env {
	t.Helper()
	ca := testcert.NewCA(t)
	topic := testcert.Topic(t)
	cert := ca.ValidPushCert(t, topic)
	mock := apnsmock.New()

	// Started by hand (rather than apnsmock.NewTestServer) to count
	// connections.
	var conns atomic.Int64
	ts := httptest.NewUnstartedServer(mock)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.EnableHTTP2 = true
	ts.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool()}
	ts.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	ts.StartTLS()
	t.Cleanup(ts.Close)

	opts = append([]apns.Option{apns.WithURL(ts.URL), apns.WithExtraRoots(ts.Certificate())}, opts...)
	s, err := apns.New(cert, topic, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(s.Close)
	return &env{mock: mock, ts: ts, sender: s, topic: topic, conns: &conns}
}

func targets(t testing.TB, n int, topic string) []push.Target {
	t.Helper()
	out := make([]push.Target, n)
	for i := range out {
		out[i] = push.Target{
			EnrollmentID: fmt.Sprintf("enr-%d", i),
			Topic:        topic,
			Token:        testcert.Token(t),
			PushMagic:    fmt.Sprintf("magic-%d-%s", i, hex.EncodeToString(testcert.Token(t)[:4])),
		}
	}
	return out
}

func TestSendHeadersAndPayload(t *testing.T) {
	e := newEnv(t)
	have := targets(t, 3, e.topic)
	have[2].Topic = "" // empty means the sender's topic
	results := e.sender.Send(t.Context(), have)
	if len(results) != len(have) {
		t.Fatalf("got %d results, want %d", len(results), len(have))
	}
	for i, r := range results {
		if r.EnrollmentID != have[i].EnrollmentID || r.Outcome != push.OutcomeOK || r.Status != http.StatusOK || r.Err != nil {
			t.Errorf("result %d = %+v, want ok for %s", i, r, have[i].EnrollmentID)
		}
	}
	got := e.mock.Pushes()
	if len(got) != len(have) {
		t.Fatalf("mock got %d pushes, want %d", len(got), len(have))
	}
	byToken := make(map[string]apnsmock.Push)
	for _, p := range got {
		byToken[hex.EncodeToString(p.Token)] = p
	}
	for _, tg := range have {
		p, ok := byToken[hex.EncodeToString(tg.Token)]
		if !ok {
			t.Errorf("no push for %s", tg.EnrollmentID)
			continue
		}
		wantBody := `{"mdm":"` + tg.PushMagic + `"}`
		checks := []struct{ name, have, want string }{
			{"body", string(p.Body), wantBody},
			{"push magic", p.PushMagic, tg.PushMagic},
			{"apns-push-type", p.PushType, "mdm"},
			{"apns-priority", p.Priority, "10"},
			{"apns-topic", p.TopicHeader, e.topic},
			{"certificate topic", p.Topic, e.topic},
		}
		for _, c := range checks {
			if c.have != c.want {
				t.Errorf("%s: %s = %q, want %q", tg.EnrollmentID, c.name, c.have, c.want)
			}
		}
		if p.ID == "" {
			t.Errorf("%s: no apns-id", tg.EnrollmentID)
		}
	}
}

func TestSendOutcomes(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		status int
		reason string
		want   push.Outcome
	}{
		{http.StatusGone, "Unregistered", push.OutcomeUnregistered},
		{http.StatusGone, "ExpiredToken", push.OutcomeUnregistered},
		{http.StatusBadRequest, "BadDeviceToken", push.OutcomeBadToken},
		{http.StatusBadRequest, "DeviceTokenNotForTopic", push.OutcomeBadToken},
		{http.StatusBadRequest, "TopicDisallowed", push.OutcomeCertError},
		{http.StatusBadRequest, "BadTopic", push.OutcomeCertError},
		{http.StatusBadRequest, "IdleTimeout", push.OutcomeRetry},
		{http.StatusBadRequest, "BadExpirationDate", push.OutcomeError},
		{http.StatusForbidden, "BadCertificate", push.OutcomeCertError},
		{http.StatusForbidden, "BadCertificateEnvironment", push.OutcomeCertError},
		{http.StatusForbidden, "ExpiredProviderToken", push.OutcomeCertError},
		{http.StatusNotFound, "BadPath", push.OutcomeError},
		{http.StatusRequestEntityTooLarge, "PayloadTooLarge", push.OutcomeError},
		{http.StatusTooManyRequests, "TooManyRequests", push.OutcomeRetry},
		{http.StatusInternalServerError, "InternalServerError", push.OutcomeRetry},
		{http.StatusServiceUnavailable, "ServiceUnavailable", push.OutcomeRetry},
		{http.StatusServiceUnavailable, "Shutdown", push.OutcomeRetry},
	}
	have := targets(t, len(tests), e.topic)
	for i, tt := range tests {
		e.mock.FailToken(have[i].Token, tt.status, tt.reason)
	}
	for i, tt := range tests {
		// One at a time: a certificate error fails the rest of its batch.
		r := e.sender.Send(t.Context(), have[i:i+1])[0]
		if r.Outcome != tt.want || r.Status != tt.status || r.Reason != tt.reason {
			t.Errorf("%d %s: got outcome %s status %d reason %q, want %s %d %q",
				tt.status, tt.reason, r.Outcome, r.Status, r.Reason, tt.want, tt.status, tt.reason)
		}
		if r.Err == nil {
			t.Errorf("%d %s: nil Err", tt.status, tt.reason)
			continue
		}
		msg := r.Err.Error()
		if strings.Contains(msg, hex.EncodeToString(have[i].Token)) || strings.Contains(msg, have[i].PushMagic) {
			t.Errorf("%d %s: error %q leaks the token or push magic", tt.status, tt.reason, msg)
		}
		if !strings.Contains(msg, tt.reason) {
			t.Errorf("%d %s: error %q does not name the reason", tt.status, tt.reason, msg)
		}
	}
}

func TestSendReusesOneConnection(t *testing.T) {
	e := newEnv(t, apns.WithWorkers(32))
	for range 3 {
		for _, r := range e.sender.Send(t.Context(), targets(t, 200, e.topic)) {
			if r.Outcome != push.OutcomeOK {
				t.Fatalf("result %+v, want ok", r)
			}
		}
	}
	if n := e.conns.Load(); n != 1 {
		t.Errorf("600 pushes opened %d connections, want 1", n)
	}
	if got := e.mock.Stats().Delivered; got != 600 {
		t.Errorf("mock delivered %d, want 600", got)
	}
}

func TestSendTargetValidation(t *testing.T) {
	e := newEnv(t)
	good := targets(t, 1, e.topic)[0]
	tests := []struct {
		name   string
		modify func(*push.Target)
		want   push.Outcome
		reason string
	}{
		{"no token", func(tg *push.Target) { tg.Token = nil }, push.OutcomeBadToken, "MissingDeviceToken"},
		{"no push magic", func(tg *push.Target) { tg.PushMagic = "" }, push.OutcomeError, "MissingPushMagic"},
		{"other topic", func(tg *push.Target) { tg.Topic = "com.apple.mgmt.External.other" }, push.OutcomeError, "TopicMismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := good
			tt.modify(&tg)
			r := e.sender.Send(t.Context(), []push.Target{tg})[0]
			if r.Outcome != tt.want || r.Reason != tt.reason || r.Err == nil {
				t.Errorf("got %s %q %v, want %s %q and an error", r.Outcome, r.Reason, r.Err, tt.want, tt.reason)
			}
		})
	}
	if n := e.mock.Stats().Requests; n != 0 {
		t.Errorf("invalid targets reached the mock %d times, want 0", n)
	}
}

func TestSendCertificateProblems(t *testing.T) {
	now := time.Now()
	ca := testcert.NewCA(t)
	otherCA := testcert.NewCA(t)
	topic := testcert.Topic(t)
	mock := apnsmock.New()
	ts := apnsmock.NewTestServer(mock, ca.Pool())
	t.Cleanup(ts.Close)
	// lenient accepts any client certificate, leaving the checks to the
	// handler, as APNs does for an expired certificate.
	lenient := apnsmock.NewTestServer(mock, nil)
	t.Cleanup(lenient.Close)

	tests := []struct {
		name      string
		cert      tls.Certificate
		clock     push.Clock
		trustMock bool
		lenient   bool
		reason    string
		wantInErr string
	}{
		{
			name:      "expired",
			cert:      ca.PushCert(t, topic, now.Add(-48*time.Hour), now.Add(-time.Hour)),
			trustMock: true,
			reason:    "CertificateNotValid",
			wantInErr: "expired",
		},
		{
			name:      "not yet valid",
			cert:      ca.PushCert(t, topic, now.Add(time.Hour), now.Add(48*time.Hour)),
			trustMock: true,
			reason:    "CertificateNotValid",
			wantInErr: "not valid before",
		},
		{
			name:      "issued by another ca",
			cert:      otherCA.ValidPushCert(t, topic),
			trustMock: true,
			reason:    "TLSAlert",
			wantInErr: "push certificate",
		},
		{
			name:      "server not trusted",
			cert:      ca.ValidPushCert(t, topic),
			reason:    "ServerCertificateUntrusted",
			wantInErr: "not trusted",
		},
		{
			// The sender's clock thinks the certificate is valid; the
			// mock (like APNs) knows better and answers 403.
			name:      "expired by the server's clock",
			cert:      ca.PushCert(t, topic, now.Add(-48*time.Hour), now.Add(-time.Hour)),
			clock:     fixedClock{now.Add(-2 * time.Hour)},
			trustMock: true,
			lenient:   true,
			reason:    "BadCertificate",
			wantInErr: "refused the push certificate",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mock.Reset()
			srv := ts
			if tt.lenient {
				srv = lenient
			}
			opts := []apns.Option{apns.WithURL(srv.URL), apns.WithRootCAs(x509.NewCertPool())}
			if tt.trustMock {
				opts = append(opts, apns.WithExtraRoots(srv.Certificate()))
			}
			if tt.clock != nil {
				opts = append(opts, apns.WithClock(tt.clock))
			}
			s, err := apns.New(tt.cert, topic, opts...)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer s.Close()
			have := targets(t, 50, topic)
			results := s.Send(t.Context(), have)
			for i, r := range results {
				if r.Outcome != push.OutcomeCertError || r.Reason != tt.reason {
					t.Fatalf("result %d: %s %q (%v), want cert_error %q", i, r.Outcome, r.Reason, r.Err, tt.reason)
				}
				if r.Err == nil || !strings.Contains(r.Err.Error(), tt.wantInErr) {
					t.Fatalf("result %d: error %v, want it to mention %q", i, r.Err, tt.wantInErr)
				}
			}
			// A refused certificate fails the batch at once instead of
			// trying every target.
			if n := mock.Stats().Requests; n > 1 {
				t.Errorf("mock answered %d requests, want at most 1", n)
			}
		})
	}
}

func TestSendUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	ca := testcert.NewCA(t)
	topic := testcert.Topic(t)
	s, err := apns.New(ca.ValidPushCert(t, topic), topic, apns.WithURL("https://"+addr), apns.WithTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	have := targets(t, 1000, topic)
	start := time.Now()
	results := s.Send(t.Context(), have)
	elapsed := time.Since(start)
	for i, r := range results {
		if r.Outcome != push.OutcomeRetry || r.Reason != "ConnectionError" {
			t.Fatalf("result %d: %s %q, want retry ConnectionError", i, r.Outcome, r.Reason)
		}
		if strings.Contains(r.Err.Error(), hex.EncodeToString(have[i].Token)) {
			t.Fatalf("error %q leaks the token", r.Err)
		}
	}
	if elapsed > time.Second {
		t.Errorf("1000 pushes to an unreachable server took %v, want < 1s", elapsed)
	}
}

func TestSendTimeout(t *testing.T) {
	e := newEnv(t, apns.WithTimeout(100*time.Millisecond), apns.WithWorkers(8))
	e.mock.SetLatency(5 * time.Second)
	start := time.Now()
	results := e.sender.Send(t.Context(), targets(t, 200, e.topic))
	elapsed := time.Since(start)
	for i, r := range results {
		if r.Outcome != push.OutcomeRetry || r.Reason != "Timeout" {
			t.Fatalf("result %d: %s %q (%v), want retry Timeout", i, r.Outcome, r.Reason, r.Err)
		}
	}
	if elapsed > 2*time.Second {
		t.Errorf("200 pushes to a silent server took %v, want the batch to give up after the first timeout", elapsed)
	}
}

func TestSendCanceled(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for i, r := range e.sender.Send(ctx, targets(t, 20, e.topic)) {
		if r.Outcome != push.OutcomeRetry || r.Err == nil {
			t.Errorf("result %d: %s %v, want retry with an error", i, r.Outcome, r.Err)
		}
	}
}

func TestNewValidation(t *testing.T) {
	ca := testcert.NewCA(t)
	topic := testcert.Topic(t)
	cert := ca.ValidPushCert(t, topic)
	tests := []struct {
		name  string
		cert  tls.Certificate
		topic string
		opts  []apns.Option
	}{
		{"empty topic", cert, "", nil},
		{"topic without prefix", cert, "com.example.app", nil},
		{"prefix only", cert, "com.apple.mgmt.", nil},
		{"no certificate", tls.Certificate{}, topic, nil},
		{"topic is not the certificate uid", cert, testcert.Topic(t), nil},
		{"http url", cert, topic, []apns.Option{apns.WithURL("http://api.push.apple.com")}},
		{"url with path", cert, topic, []apns.Option{apns.WithURL("https://api.push.apple.com/3/device")}},
		{"zero workers", cert, topic, []apns.Option{apns.WithWorkers(0)}},
		{"zero timeout", cert, topic, []apns.Option{apns.WithTimeout(0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := apns.New(tt.cert, tt.topic, tt.opts...); err == nil {
				t.Error("New succeeded, want an error")
			}
		})
	}
	s, err := apns.New(cert, topic)
	if err != nil {
		t.Fatalf("New with defaults: %v", err)
	}
	if s.Topic() != topic {
		t.Errorf("Topic() = %q, want %q", s.Topic(), topic)
	}
}

func TestPayload(t *testing.T) {
	tests := []struct{ have, want string }{
		{"3F2504E0-4F89-11D3-9A0C-0305E82C3301", `{"mdm":"3F2504E0-4F89-11D3-9A0C-0305E82C3301"}`},
		{`quo"te\`, `{"mdm":"quo\"te\\"}`},
		{"", `{"mdm":""}`},
	}
	for _, tt := range tests {
		if got := string(apns.Payload(tt.have)); got != tt.want {
			t.Errorf("Payload(%q) = %s, want %s", tt.have, got, tt.want)
		}
	}
}

func FuzzPayload(f *testing.F) {
	for _, s := range []string{"3F2504E0-4F89-11D3-9A0C-0305E82C3301", `"}{`, "\x00\u2028<&>", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, magic string) {
		p := apns.Payload(magic)
		got, err := apnsmock.ParsePayload(p)
		if magic == "" {
			if err == nil {
				t.Fatalf("empty magic accepted")
			}
			return
		}
		if err != nil {
			t.Fatalf("payload %q not accepted: %v", p, err)
		}
		// JSON carries text: valid UTF-8 round-trips exactly (invalid
		// bytes become U+FFFD).
		if utf8.ValidString(magic) && got != magic {
			t.Fatalf("round trip of %q gave %q", magic, got)
		}
	})
}

func TestClassify(t *testing.T) {
	tests := []struct {
		status int
		reason string
		want   push.Outcome
	}{
		{200, "", push.OutcomeOK},
		{410, "Unregistered", push.OutcomeUnregistered},
		{400, "BadDeviceToken", push.OutcomeBadToken},
		{400, "MissingTopic", push.OutcomeCertError},
		{400, "PayloadEmpty", push.OutcomeError},
		{403, "", push.OutcomeCertError},
		{405, "MethodNotAllowed", push.OutcomeError},
		{429, "TooManyProviderTokenUpdates", push.OutcomeRetry},
		{502, "", push.OutcomeRetry},
		{302, "", push.OutcomeError},
	}
	for _, tt := range tests {
		if got := apns.Classify(tt.status, tt.reason); got != tt.want {
			t.Errorf("Classify(%d, %q) = %s, want %s", tt.status, tt.reason, got, tt.want)
		}
	}
}

// BenchmarkSend measures pushes per second to the mock over loopback
// HTTP/2 with TLS, client and server in this process.
func BenchmarkSend(b *testing.B) {
	for _, workers := range []int{32, 64, 128} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			e := newEnv(b, apns.WithWorkers(workers))
			batch := targets(b, 1000, e.topic)
			ctx := context.Background()
			// Warm the connection up.
			e.sender.Send(ctx, batch[:1])
			b.ResetTimer()
			start, cpu0 := time.Now(), cputime.Process()
			sent := 0
			for sent < b.N {
				n := min(len(batch), b.N-sent)
				for _, r := range e.sender.Send(ctx, batch[:n]) {
					if r.Outcome != push.OutcomeOK {
						b.Fatalf("result %+v", r)
					}
				}
				sent += n
			}
			b.ReportMetric(float64(sent)/time.Since(start).Seconds(), "pushes/s")
			// CPU per push (client and mock together) does not depend on
			// how busy the machine is: cores / this = the ceiling.
			b.ReportMetric(float64((cputime.Process()-cpu0).Microseconds())/float64(sent), "cpu-µs/push")
		})
	}
}
