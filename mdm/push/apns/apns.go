// Package apns sends MDM pushes to the Apple Push Notification service with
// github.com/sideshow/apns2, authenticated by the MDM push certificate over
// mutual TLS.
//
// A Sender serves one topic (one push certificate) and keeps one long-lived
// HTTP/2 client for it: requests are multiplexed as streams over the same
// connection, and a bounded worker pool limits the streams in flight.
package apns

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sideshow/apns2"
	"golang.org/x/net/http2"

	"github.com/sundial-mdm/sundial/mdm/push"
)

// APNs endpoints.
const (
	// ProductionURL is the APNs production endpoint, the default. Push
	// certificates from identity.apple.com are production-only.
	ProductionURL = "https://api.push.apple.com"
	// DevelopmentURL is the APNs development (sandbox) endpoint.
	DevelopmentURL = "https://api.development.push.apple.com"
)

// Defaults of the Sender options.
const (
	DefaultWorkers = 64
	DefaultTimeout = 10 * time.Second
)

const reasonTimeout = "Timeout"

// oidUID is the subject attribute holding the push topic.
var oidUID = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}

// TopicPrefix starts every MDM push topic.
const TopicPrefix = "com.apple.mgmt."

// Sender pushes to APNs for one topic. It is safe for concurrent use; the
// worker bound is shared by all concurrent Send calls.
type Sender struct {
	client  *apns2.Client
	topic   string
	leaf    *x509.Certificate
	timeout time.Duration
	clock   push.Clock
	sem     chan struct{}
	// healthy is set once APNs answers, cleared by a connection or
	// certificate failure.
	healthy atomic.Bool
}

type config struct {
	url        string
	roots      *x509.CertPool
	extraRoots []*x509.Certificate
	workers    int
	timeout    time.Duration
	clock      push.Clock
}

// Option configures a Sender.
type Option func(*config)

// WithURL sets the APNs endpoint (default ProductionURL), e.g. DevelopmentURL
// or a mock's URL.
func WithURL(u string) Option { return func(c *config) { c.url = u } }

// WithRootCAs replaces the system roots with pool for verifying the APNs
// server.
func WithRootCAs(pool *x509.CertPool) Option { return func(c *config) { c.roots = pool } }

// WithExtraRoots trusts certs as roots for the APNs server, on top of the
// system roots (or of WithRootCAs), e.g. a mock's certificate.
func WithExtraRoots(certs ...*x509.Certificate) Option {
	return func(c *config) { c.extraRoots = append(c.extraRoots, certs...) }
}

// WithWorkers bounds the number of requests in flight (default 64). APNs
// allows many more streams per connection; 32 to 64 keeps one connection busy.
func WithWorkers(n int) Option { return func(c *config) { c.workers = n } }

// WithTimeout bounds each request, connection included (default 10 s).
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithClock sets the clock used for latency and certificate validity
// (default push.SystemClock).
func WithClock(cl push.Clock) Option { return func(c *config) { c.clock = cl } }

// New returns a Sender for topic, authenticated by cert (the MDM push
// certificate and its key). topic is the certificate's UID and must start
// with "com.apple.mgmt.". New does not connect; the first Send does.
func New(cert tls.Certificate, topic string, opts ...Option) (*Sender, error) {
	c := config{url: ProductionURL, workers: DefaultWorkers, timeout: DefaultTimeout, clock: push.SystemClock{}}
	for _, o := range opts {
		o(&c)
	}
	if !strings.HasPrefix(topic, TopicPrefix) || len(topic) == len(TopicPrefix) {
		return nil, fmt.Errorf("apns sender: topic %q does not start with %q", topic, TopicPrefix)
	}
	if len(cert.Certificate) == 0 || cert.PrivateKey == nil {
		return nil, errors.New("apns sender: push certificate has no certificate or no private key")
	}
	leaf := cert.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("apns sender: parse push certificate: %w", err)
		}
	}
	for _, n := range leaf.Subject.Names {
		if uid, ok := n.Value.(string); ok && n.Type.Equal(oidUID) && uid != topic {
			return nil, fmt.Errorf("apns sender: topic %q is not the push certificate's uid %q", topic, uid)
		}
	}
	u, err := url.Parse(c.url)
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("apns sender: endpoint %q: want https://host[:port]", c.url)
	}
	switch {
	case c.workers <= 0:
		return nil, fmt.Errorf("apns sender: workers %d: want > 0", c.workers)
	case c.timeout <= 0:
		return nil, fmt.Errorf("apns sender: timeout %v: want > 0", c.timeout)
	case c.clock == nil:
		return nil, errors.New("apns sender: nil clock")
	}

	var roots *x509.CertPool
	if c.roots != nil {
		roots = c.roots.Clone()
	}
	if len(c.extraRoots) > 0 {
		if roots == nil {
			// Failing to read the system roots leaves only the extra ones.
			if roots, _ = x509.SystemCertPool(); roots == nil {
				roots = x509.NewCertPool()
			}
		}
		for _, ca := range c.extraRoots {
			roots.AddCert(ca)
		}
	}
	tlsConf := &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      roots,
		MinVersion:   tls.VersionTLS12,
		// TLS 1.2, which APNs supports: there the server refuses a bad
		// client certificate inside the handshake, so the dial fails with
		// the alert. With TLS 1.3 the refusal comes after the handshake
		// and races the first write, surfacing as "broken pipe", which
		// would hide an operator problem behind a transient retry.
		MaxVersion: tls.VersionTLS12,
	}
	dialTimeout := c.timeout
	transport := &http2.Transport{
		TLSClientConfig: tlsConf,
		DialTLSContext: func(ctx context.Context, network, addr string, cfg *tls.Config) (net.Conn, error) {
			d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: dialTimeout, KeepAlive: 15 * time.Second}, Config: cfg}
			return d.DialContext(ctx, network, addr)
		},
		ReadIdleTimeout: 15 * time.Second,
		PingTimeout:     5 * time.Second,
	}
	client := &apns2.Client{
		Host:        strings.TrimSuffix(c.url, "/"),
		Certificate: cert,
		HTTPClient:  &http.Client{Transport: transport},
	}
	return &Sender{
		client:  client,
		topic:   topic,
		leaf:    leaf,
		timeout: c.timeout,
		clock:   c.clock,
		sem:     make(chan struct{}, c.workers),
	}, nil
}

// Topic returns the APNs topic the Sender pushes to.
func (s *Sender) Topic() string { return s.topic }

// Close closes idle connections. The Sender remains usable.
func (s *Sender) Close() { s.client.CloseIdleConnections() }

// Send pushes every target and returns one Result per target, in order.
func (s *Sender) Send(ctx context.Context, targets []push.Target) []push.Result {
	results := make([]push.Result, len(targets))
	if len(targets) == 0 {
		return results
	}
	now := s.clock.Now()
	if err := s.checkCertificate(now); err != nil {
		for i, t := range targets {
			results[i] = push.Result{EnrollmentID: t.EnrollmentID, Outcome: push.OutcomeCertError, Reason: "CertificateNotValid", Err: err}
		}
		return results
	}

	b := &batch{s: s, targets: targets, results: results}
	i := 0
	// Until APNs has answered, probe with one target at a time: an
	// unreachable endpoint or a refused certificate then fails the batch
	// after one request instead of len(targets).
	for ; i < len(targets) && !s.healthy.Load() && b.abort.Load() == nil; i++ {
		b.do(ctx, i)
	}
	b.next.Store(int64(i))
	var wg sync.WaitGroup
	for range min(cap(s.sem), len(targets)-i) {
		wg.Go(func() {
			for {
				i := int(b.next.Add(1) - 1)
				if i >= len(targets) {
					return
				}
				b.do(ctx, i)
			}
		})
	}
	wg.Wait()
	return results
}

// batch is the state of one Send.
type batch struct {
	s       *Sender
	targets []push.Target
	results []push.Result
	next    atomic.Int64
	// abort holds the first connection-level failure of this batch: once
	// the connection or the certificate fails, the rest of the batch fails
	// the same way without dialing again. A timeout before APNs answered
	// anything in this batch counts as such a failure.
	abort    atomic.Pointer[push.Result]
	answered atomic.Bool
}

// do pushes target i.
func (b *batch) do(ctx context.Context, i int) {
	s, t := b.s, b.targets[i]
	if a := b.abort.Load(); a != nil {
		r := *a
		r.EnrollmentID, r.Status, r.Latency = t.EnrollmentID, 0, 0
		b.results[i] = r
		return
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		b.results[i] = push.Result{EnrollmentID: t.EnrollmentID, Outcome: push.OutcomeRetry, Reason: "Canceled",
			Err: fmt.Errorf("push not sent: %w", ctx.Err())}
		return
	}
	r, connLevel := s.sendOne(ctx, t)
	<-s.sem
	b.results[i] = r
	switch {
	case r.Outcome == push.OutcomeCertError:
		connLevel = true
	case r.Status != 0:
		b.answered.Store(true)
		s.healthy.Store(true)
	case r.Reason == reasonTimeout && !b.answered.Load():
		connLevel = true
	}
	if connLevel {
		s.healthy.Store(false)
		b.abort.CompareAndSwap(nil, &r)
	}
}

// checkCertificate refuses a push certificate outside its validity period,
// which APNs would refuse anyway.
func (s *Sender) checkCertificate(now time.Time) error {
	switch {
	case now.After(s.leaf.NotAfter):
		return fmt.Errorf("push certificate for topic %s expired at %s: renew it at identity.apple.com", s.topic, s.leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(s.leaf.NotBefore):
		return fmt.Errorf("push certificate for topic %s is not valid before %s", s.topic, s.leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}

// sendOne pushes one target. connLevel reports a failure of the connection
// or the certificate, which the other targets of the batch would hit too.
func (s *Sender) sendOne(ctx context.Context, t push.Target) (res push.Result, connLevel bool) {
	res.EnrollmentID = t.EnrollmentID
	switch {
	case len(t.Token) == 0:
		res.Outcome, res.Reason, res.Err = push.OutcomeBadToken, "MissingDeviceToken", errors.New("target has no push token")
		return res, false
	case t.PushMagic == "":
		res.Outcome, res.Reason, res.Err = push.OutcomeError, "MissingPushMagic", errors.New("target has no push magic")
		return res, false
	case t.Topic != "" && t.Topic != s.topic:
		res.Outcome, res.Reason = push.OutcomeError, "TopicMismatch"
		res.Err = fmt.Errorf("target topic %s is not this sender's topic %s", t.Topic, s.topic)
		return res, false
	}
	n := &apns2.Notification{
		DeviceToken: hex.EncodeToString(t.Token),
		Topic:       s.topic,
		PushType:    apns2.PushTypeMDM,
		Priority:    apns2.PriorityHigh,
		Payload:     Payload(t.PushMagic),
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	start := s.clock.Now()
	resp, err := s.client.PushWithContext(ctx, n)
	res.Latency = s.clock.Now().Sub(start)
	if err != nil {
		res.Outcome, res.Reason, res.Err, connLevel = classifyError(ctx, err)
		return res, connLevel
	}
	res.Status, res.Reason = resp.StatusCode, resp.Reason
	res.Outcome = Classify(resp.StatusCode, resp.Reason)
	if res.Outcome != push.OutcomeOK {
		res.Err = &push.StatusError{Status: resp.StatusCode, Reason: resp.Reason}
		if res.Outcome == push.OutcomeCertError {
			res.Err = fmt.Errorf("apns refused the push certificate for topic %s: %w", s.topic, res.Err)
		}
	}
	return res, false
}

// Payload returns the MDM push payload, exactly {"mdm":"<magic>"}.
func Payload(pushMagic string) []byte {
	q, _ := json.Marshal(pushMagic) // a string always marshals
	b := make([]byte, 0, len(q)+8)
	b = append(b, `{"mdm":`...)
	b = append(b, q...)
	return append(b, '}')
}

// Classify maps an APNs answer to an Outcome.
func Classify(status int, reason string) push.Outcome {
	switch {
	case status == http.StatusOK:
		return push.OutcomeOK
	case status == http.StatusGone:
		return push.OutcomeUnregistered
	case status == http.StatusBadRequest:
		switch reason {
		case apns2.ReasonBadDeviceToken, apns2.ReasonDeviceTokenNotForTopic:
			return push.OutcomeBadToken
		case apns2.ReasonBadTopic, apns2.ReasonTopicDisallowed, apns2.ReasonMissingTopic:
			// The certificate's topic is refused: an operator problem.
			return push.OutcomeCertError
		case apns2.ReasonIdleTimeout:
			return push.OutcomeRetry
		}
		return push.OutcomeError
	case status == http.StatusForbidden:
		return push.OutcomeCertError
	case status == http.StatusTooManyRequests, status >= 500:
		return push.OutcomeRetry
	}
	return push.OutcomeError
}

// classifyError maps a failed request to an Outcome. The error returned
// never contains the request URL (which holds the token).
func classifyError(ctx context.Context, err error) (push.Outcome, string, error, bool) {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err // drop the URL: it contains the device token
	}
	var alert tls.AlertError
	var verr *tls.CertificateVerificationError
	var uaerr x509.UnknownAuthorityError
	var herr x509.HostnameError
	var ierr x509.CertificateInvalidError
	var goaway http2.GoAwayError
	var jerr *json.SyntaxError
	switch {
	case errors.As(err, &alert):
		return push.OutcomeCertError, "TLSAlert",
			fmt.Errorf("apns refused the tls handshake (check the push certificate): %w", err), true
	case errors.As(err, &verr), errors.As(err, &uaerr), errors.As(err, &herr), errors.As(err, &ierr):
		return push.OutcomeCertError, "ServerCertificateUntrusted",
			fmt.Errorf("apns server certificate not trusted: %w", err), true
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
		return push.OutcomeRetry, reasonTimeout, fmt.Errorf("push timed out: %w", err), false
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return push.OutcomeRetry, "Canceled", fmt.Errorf("push canceled: %w", err), false
	case errors.As(err, &goaway):
		return push.OutcomeRetry, "GoAway", fmt.Errorf("apns closed the connection: %w", err), false
	case errors.As(err, &jerr):
		return push.OutcomeRetry, "BadResponse", fmt.Errorf("apns answered an unreadable body: %w", err), false
	}
	var nerr net.Error
	if errors.As(err, &nerr) && nerr.Timeout() {
		return push.OutcomeRetry, reasonTimeout, fmt.Errorf("push timed out: %w", err), false
	}
	var operr *net.OpError
	if errors.As(err, &operr) && operr.Op == "remote error" {
		// crypto/tls reports the peer's alert this way.
		return push.OutcomeCertError, "TLSAlert",
			fmt.Errorf("apns refused the tls handshake (check the push certificate): %w", err), true
	}
	if errors.As(err, &operr) && operr.Op == "dial" {
		return push.OutcomeRetry, "ConnectionError", fmt.Errorf("connect to apns: %w", err), true
	}
	return push.OutcomeRetry, "ConnectionError", fmt.Errorf("push request: %w", err), false
}
