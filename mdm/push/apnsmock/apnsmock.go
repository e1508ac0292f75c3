// Package apnsmock is a mock of the APNs provider API for MDM pushes, for
// tests, load runs and demos.
//
// It answers POST /3/device/{hex token} over HTTP/2 and TLS with a client
// certificate, checks requests the way APNs does for MDM, records delivered
// pushes and lets a simulated device subscribe to its token, so that it
// "wakes" and connects when it is pushed, as a Mac does. Failures and latency
// can be injected per token or globally.
//
// In tests, NewTestServer starts it on an httptest server; ListenAndServe
// runs it standalone.
package apnsmock

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sundial-mdm/sundial/mdm/push"
)

// Reasons the mock answers, as APNs spells them.
const (
	ReasonBadDeviceToken       = "BadDeviceToken"
	ReasonMissingDeviceToken   = "MissingDeviceToken"
	ReasonBadPath              = "BadPath"
	ReasonMethodNotAllowed     = "MethodNotAllowed"
	ReasonBadTopic             = "BadTopic"
	ReasonMissingTopic         = "MissingTopic"
	ReasonInvalidPushType      = "InvalidPushType"
	ReasonBadPriority          = "BadPriority"
	ReasonBadExpirationDate    = "BadExpirationDate"
	ReasonBadMessageID         = "BadMessageId"
	ReasonPayloadEmpty         = "PayloadEmpty"
	ReasonPayloadTooLarge      = "PayloadTooLarge"
	ReasonBadCertificate       = "BadCertificate"
	ReasonMissingProviderToken = "MissingProviderToken"
	ReasonExpiredProviderToken = "ExpiredProviderToken"
	ReasonUnregistered         = "Unregistered"
	ReasonTooManyRequests      = "TooManyRequests"
	ReasonInternalServerError  = "InternalServerError"
	ReasonServiceUnavailable   = "ServiceUnavailable"
	// ReasonBadPayload is the mock's own reason for a body that is not a
	// valid MDM payload (not a JSON object with a non-empty "mdm" string, or
	// with an "aps" key). APNs would accept such a body and the device would
	// drop it; the mock is stricter to catch bugs.
	ReasonBadPayload = "BadPayload"
)

// MaxPayload is the largest body accepted, as APNs does for notifications.
const MaxPayload = 4096

// DefaultBuffer is the default number of delivered pushes kept.
const DefaultBuffer = 10000

var oidUID = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}

// Push is a push the mock delivered.
type Push struct {
	// Token is the raw device token.
	Token []byte
	// Topic is the UID of the client certificate.
	Topic string
	// PushMagic is the payload's "mdm" value.
	PushMagic string
	// PushType is the apns-push-type header ("" if absent).
	PushType string
	// Priority is the apns-priority header ("" if absent).
	Priority string
	// TopicHeader is the apns-topic header ("" if absent).
	TopicHeader string
	// ID is the apns-id answered.
	ID string
	// Body is the raw payload.
	Body []byte
	// At is when the push was delivered, by the mock's clock.
	At time.Time
}

// Stats counts requests.
type Stats struct {
	// Requests is the number of requests answered.
	Requests uint64
	// Delivered is the number answered 200.
	Delivered uint64
	// ByStatus counts answers by HTTP status.
	ByStatus map[int]uint64
	// ByReason counts error answers by reason.
	ByReason map[string]uint64
}

// Clock tells the time.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

type failure struct {
	status int
	reason string
}

// Server is the mock APNs provider API. It is an http.Handler; the zero
// value is not usable, call New.
type Server struct {
	clock  Clock
	logger *slog.Logger
	buffer int

	mu          sync.Mutex
	tokenFail   map[string]failure // by hex token
	globalFail  failure
	latency     time.Duration
	pushes      []Push // ring of the last buffer pushes
	next        int    // ring write index once full
	perToken    map[string]int
	subscribers map[string]map[int]func()
	subSeq      int
	stats       Stats
}

// Option configures a Server.
type Option func(*Server)

// WithClock sets the clock for certificate expiry, 410 timestamps and push
// times (default: the system clock).
func WithClock(c Clock) Option { return func(s *Server) { s.clock = c } }

// WithLogger sets the logger (default: discard). Tokens are logged as a
// short hash only.
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.logger = l } }

// WithBuffer sets how many delivered pushes are kept (default 10000).
func WithBuffer(n int) Option { return func(s *Server) { s.buffer = n } }

// New returns a mock APNs server.
func New(opts ...Option) *Server {
	s := &Server{
		clock:       systemClock{},
		logger:      slog.New(slog.DiscardHandler),
		buffer:      DefaultBuffer,
		tokenFail:   make(map[string]failure),
		perToken:    make(map[string]int),
		subscribers: make(map[string]map[int]func()),
	}
	for _, o := range opts {
		o(s)
	}
	if s.buffer < 0 {
		s.buffer = 0
	}
	s.stats = Stats{ByStatus: make(map[int]uint64), ByReason: make(map[string]uint64)}
	return s
}

// FailToken makes every push to token answer status with reason, until
// ClearToken. A 410 answer carries a timestamp, as APNs' does.
func (s *Server) FailToken(token []byte, status int, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenFail[hex.EncodeToString(token)] = failure{status: status, reason: reason}
}

// ClearToken removes a FailToken setting.
func (s *Server) ClearToken(token []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokenFail, hex.EncodeToString(token))
}

// SetFailure makes every valid request answer status with reason; status 0
// restores normal answers. Per-token failures take precedence.
func (s *Server) SetFailure(status int, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.globalFail = failure{status: status, reason: reason}
}

// SetLatency delays every answer by d (0 for none).
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// Subscribe calls fn, in its own goroutine, each time a push to token is
// delivered. It returns a function that cancels the subscription.
func (s *Server) Subscribe(token []byte, fn func()) (cancel func()) {
	key := hex.EncodeToString(token)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subSeq++
	id := s.subSeq
	if s.subscribers[key] == nil {
		s.subscribers[key] = make(map[int]func())
	}
	s.subscribers[key][id] = fn
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.subscribers[key], id)
		if len(s.subscribers[key]) == 0 {
			delete(s.subscribers, key)
		}
	}
}

// Pushes returns the delivered pushes still in the buffer, oldest first.
func (s *Server) Pushes() []Push {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Push, 0, len(s.pushes))
	out = append(out, s.pushes[s.next:]...)
	return append(out, s.pushes[:s.next]...)
}

// Delivered returns how many pushes to token were delivered (not bounded by
// the buffer).
func (s *Server) Delivered(token []byte) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.perToken[hex.EncodeToString(token)]
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Requests: s.stats.Requests, Delivered: s.stats.Delivered,
		ByStatus: make(map[int]uint64, len(s.stats.ByStatus)), ByReason: make(map[string]uint64, len(s.stats.ByReason))}
	for k, v := range s.stats.ByStatus {
		st.ByStatus[k] = v
	}
	for k, v := range s.stats.ByReason {
		st.ByReason[k] = v
	}
	return st
}

// Reset forgets pushes, counters and injected failures and latency; it keeps
// subscriptions.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenFail = make(map[string]failure)
	s.globalFail = failure{}
	s.latency = 0
	s.pushes, s.next = nil, 0
	s.perToken = make(map[string]int)
	s.stats = Stats{ByStatus: make(map[int]uint64), ByReason: make(map[string]uint64)}
}

// ServeHTTP answers one APNs provider API request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("apns-id")
	if id == "" || !validUUID(id) {
		id = newUUID()
	}
	w.Header().Set("apns-id", id)

	s.mu.Lock()
	latency := s.latency
	s.mu.Unlock()
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}

	p, status, reason := s.check(w, r)
	if status == http.StatusOK {
		p.ID = id
		s.deliver(p)
		s.logger.DebugContext(r.Context(), "apns mock delivered", "token_hash", push.TokenHash(p.Token), "topic", p.Topic)
		w.WriteHeader(http.StatusOK)
		return
	}
	s.count(status, reason)
	s.logger.DebugContext(r.Context(), "apns mock refused", "status", status, "reason", reason)
	body := map[string]any{"reason": reason}
	if status == http.StatusGone {
		body["timestamp"] = s.clock.Now().UnixMilli()
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// check validates a request as APNs would and returns the push to deliver,
// or the error status and reason.
func (s *Server) check(w http.ResponseWriter, r *http.Request) (Push, int, string) {
	var p Push
	if r.Method != http.MethodPost {
		return p, http.StatusMethodNotAllowed, ReasonMethodNotAllowed
	}
	hexToken, ok := strings.CutPrefix(r.URL.Path, "/3/device/")
	if !ok {
		return p, http.StatusNotFound, ReasonBadPath
	}
	if hexToken == "" {
		return p, http.StatusBadRequest, ReasonMissingDeviceToken
	}
	token, err := hex.DecodeString(hexToken)
	if err != nil || strings.Contains(hexToken, "/") {
		return p, http.StatusBadRequest, ReasonBadDeviceToken
	}
	p.Token = token
	p.At = s.clock.Now()

	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return p, http.StatusForbidden, ReasonMissingProviderToken
	}
	leaf := r.TLS.PeerCertificates[0]
	if p.At.After(leaf.NotAfter) || p.At.Before(leaf.NotBefore) {
		return p, http.StatusForbidden, ReasonBadCertificate
	}
	topic, err := TopicFromCertificate(leaf)
	if err != nil {
		return p, http.StatusForbidden, ReasonBadCertificate
	}
	p.Topic = topic

	p.TopicHeader = r.Header.Get("apns-topic")
	if p.TopicHeader != "" && p.TopicHeader != topic {
		return p, http.StatusBadRequest, ReasonBadTopic
	}
	p.PushType = r.Header.Get("apns-push-type")
	if p.PushType != "" && p.PushType != "mdm" {
		return p, http.StatusBadRequest, ReasonInvalidPushType
	}
	p.Priority = r.Header.Get("apns-priority")
	if p.Priority != "" && p.Priority != "10" && p.Priority != "5" && p.Priority != "1" {
		return p, http.StatusBadRequest, ReasonBadPriority
	}
	if exp := r.Header.Get("apns-expiration"); exp != "" {
		if _, err := strconv.ParseInt(exp, 10, 64); err != nil {
			return p, http.StatusBadRequest, ReasonBadExpirationDate
		}
	}
	if id := r.Header.Get("apns-id"); id != "" && !validUUID(id) {
		return p, http.StatusBadRequest, ReasonBadMessageID
	}

	body, err := readBody(r.Body)
	if errors.Is(err, errTooLarge) {
		return p, http.StatusRequestEntityTooLarge, ReasonPayloadTooLarge
	} else if err != nil {
		return p, http.StatusBadRequest, ReasonBadPayload
	}
	if len(body) == 0 {
		return p, http.StatusBadRequest, ReasonPayloadEmpty
	}
	magic, err := ParsePayload(body)
	if err != nil {
		return p, http.StatusBadRequest, ReasonBadPayload
	}
	p.PushMagic, p.Body = magic, body

	s.mu.Lock()
	f, ok := s.tokenFail[hex.EncodeToString(token)]
	if !ok {
		f = s.globalFail
	}
	s.mu.Unlock()
	if f.status != 0 && f.status != http.StatusOK {
		return p, f.status, f.reason
	}
	return p, http.StatusOK, ""
}

var (
	errTooLarge = errors.New("payload too large")
	bufPool     = sync.Pool{New: func() any { return new([MaxPayload + 1]byte) }}
)

// readBody reads at most MaxPayload bytes and returns a copy of them.
func readBody(r io.Reader) ([]byte, error) {
	buf := bufPool.Get().(*[MaxPayload + 1]byte)
	defer bufPool.Put(buf)
	n, err := io.ReadFull(r, buf[:])
	switch {
	case n > MaxPayload:
		return nil, errTooLarge
	case err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF):
		return nil, err
	}
	return bytes.Clone(buf[:n]), nil
}

// ParsePayload checks an MDM push payload, a JSON object with a non-empty
// "mdm" string and no "aps" key, and returns the push magic.
func ParsePayload(body []byte) (string, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return "", fmt.Errorf("payload is not a json object: %w", err)
	}
	if _, ok := m["aps"]; ok {
		return "", errors.New("mdm payload has an aps key")
	}
	raw, ok := m["mdm"]
	if !ok {
		return "", errors.New("payload has no mdm key")
	}
	var magic string
	if err := json.Unmarshal(raw, &magic); err != nil {
		return "", fmt.Errorf("mdm value is not a string: %w", err)
	}
	if magic == "" {
		return "", errors.New("mdm value is empty")
	}
	return magic, nil
}

func (s *Server) count(status int, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Requests++
	s.stats.ByStatus[status]++
	if reason != "" {
		s.stats.ByReason[reason]++
	}
}

func (s *Server) deliver(p Push) {
	key := hex.EncodeToString(p.Token)
	s.mu.Lock()
	s.stats.Requests++
	s.stats.Delivered++
	s.stats.ByStatus[http.StatusOK]++
	s.perToken[key]++
	if s.buffer > 0 {
		if len(s.pushes) < s.buffer {
			s.pushes = append(s.pushes, p)
		} else {
			s.pushes[s.next] = p
			s.next = (s.next + 1) % s.buffer
		}
	}
	var subs []func()
	for _, fn := range s.subscribers[key] {
		subs = append(subs, fn)
	}
	s.mu.Unlock()
	for _, fn := range subs {
		go fn()
	}
}

// TopicFromCertificate returns the UID attribute of cert's subject, which
// must start with "com.apple.mgmt.".
func TopicFromCertificate(cert *x509.Certificate) (string, error) {
	for _, n := range cert.Subject.Names {
		if !n.Type.Equal(oidUID) {
			continue
		}
		uid, ok := n.Value.(string)
		if !ok {
			return "", errors.New("certificate uid is not a string")
		}
		if !strings.HasPrefix(uid, "com.apple.mgmt.") {
			return "", fmt.Errorf("certificate uid %q is not an mdm push topic", uid)
		}
		return uid, nil
	}
	return "", errors.New("certificate has no uid attribute")
}

// TLSConfig returns the server TLS configuration: cert as the server
// certificate, HTTP/2, and a required client certificate, verified against
// clientCAs (nil accepts any client certificate, as the topic is all the mock
// needs).
func TLSConfig(cert tls.Certificate, clientCAs *x509.CertPool) *tls.Config {
	c := &tls.Config{
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"h2"},
		MinVersion:   tls.VersionTLS12,
		ClientAuth:   tls.RequireAnyClientCert,
	}
	if clientCAs != nil {
		c.ClientAuth, c.ClientCAs = tls.RequireAndVerifyClientCert, clientCAs
	}
	return c
}

// NewTestServer starts s on an httptest server with HTTP/2 and TLS, asking
// for a client certificate (verified against clientCAs, or any if nil). The
// server certificate is httptest's: trust ts.Certificate() in the client and
// push to ts.URL. Close the server when done.
func NewTestServer(s *Server, clientCAs *x509.CertPool) *httptest.Server {
	ts := httptest.NewUnstartedServer(s)
	ts.Config.ErrorLog = slog.NewLogLogger(s.logger.Handler(), slog.LevelDebug)
	ts.EnableHTTP2 = true
	ts.TLS = TLSConfig(tls.Certificate{}, clientCAs)
	ts.TLS.Certificates = nil // httptest fills in its own
	ts.StartTLS()
	return ts
}

// ListenAndServe runs s on addr with tlsCert as the server certificate until
// ctx is done, then shuts down gracefully. Client certificates are verified
// against clientCAs, or any is accepted if nil.
func (s *Server) ListenAndServe(ctx context.Context, addr string, tlsCert tls.Certificate, clientCAs *x509.CertPool) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("apns mock: listen: %w", err)
	}
	return s.Serve(ctx, ln, tlsCert, clientCAs)
}

// Serve is ListenAndServe on an existing listener, which it closes.
func (s *Server) Serve(ctx context.Context, ln net.Listener, tlsCert tls.Certificate, clientCAs *x509.CertPool) error {
	srv := &http.Server{
		Handler:           s,
		TLSConfig:         TLSConfig(tlsCert, clientCAs),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelDebug),
	}
	s.logger.InfoContext(ctx, "apns mock listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return fmt.Errorf("apns mock: serve: %w", err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("apns mock: shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("apns mock: serve: %w", err)
	}
	return nil
}

// ListenAndServe runs a new mock APNs server on addr until ctx is done. It
// is what `sundial apnsmock --listen ADDR` runs.
func ListenAndServe(ctx context.Context, addr string, tlsCert tls.Certificate, clientCAs *x509.CertPool, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return New(WithLogger(logger)).ListenAndServe(ctx, addr, tlsCert, clientCAs)
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return strings.ToUpper(h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:])
}

// validUUID reports whether s looks like 8-4-4-4-12 hex digits.
func validUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
				return false
			}
		}
	}
	return true
}
