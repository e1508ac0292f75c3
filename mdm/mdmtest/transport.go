package mdmtest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/micromdm/plist"
	"github.com/smallstep/pkcs7"
	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// Wire constants of the MDM protocol.
const (
	ContentTypeCheckin = "application/x-apple-aspen-mdm-checkin"
	ContentTypeConnect = "application/x-apple-aspen-mdm"
	UserAgent          = "MDM/1.0"
	SignatureHeader    = "Mdm-Signature"

	maxResponseBody = 16 << 20
)

// HTTPError is returned when a server answers with a status other than 200.
type HTTPError struct {
	Op         string // e.g. "checkin.Authenticate", "connect"
	StatusCode int
	Body       []byte // the first bytes of the answer
}

// Error names the operation and the status.
func (e *HTTPError) Error() string {
	return fmt.Sprintf("mdmtest: %s: HTTP %d", e.Op, e.StatusCode)
}

// Recorder receives the latency and outcome of every network operation.
// Implementations must be safe for concurrent use.
type Recorder interface {
	Record(op string, took time.Duration, err error)
}

// Enrollment is what a device keeps after a successful Enroll.
type Enrollment struct {
	Profile     *Profile
	ServerURL   string
	CheckInURL  string
	Topic       string
	SignMessage bool
	Certificate *x509.Certificate // the identity certificate
	Key         crypto.PrivateKey // the identity key
}

// do sends req and returns the answer body, failing on non-200 statuses.
func (d *Device) do(c *http.Client, req *http.Request, op string) (*http.Response, []byte, error) {
	if !d.Online() {
		return nil, nil, ErrOffline
	}
	start := d.clock.Now()
	resp, body, err := d.roundTrip(c, req, op)
	if d.rec != nil {
		d.rec.Record(op, d.clock.Now().Sub(start), err)
	}
	d.log.LogAttrs(req.Context(), slog.LevelDebug, "mdm request", slog.String("udid", d.UDID), slog.String("op", op), slog.Any("err", err))
	return resp, body, err
}

func (d *Device) roundTrip(c *http.Client, req *http.Request, op string) (*http.Response, []byte, error) {
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody+1))
	if err != nil {
		return resp, nil, fmt.Errorf("read answer: %w", err)
	}
	if len(body) > maxResponseBody {
		return resp, nil, fmt.Errorf("answer larger than %d bytes", maxResponseBody)
	}
	if resp.StatusCode != http.StatusOK {
		return resp, body, &HTTPError{Op: op, StatusCode: resp.StatusCode, Body: body[:min(len(body), 512)]}
	}
	return resp, body, nil
}

// SignMessage returns an Mdm-Signature header value for body: base64 of a
// detached CMS SignedData with the signer certificate embedded, using a
// SHA-256 digest, or SHA-1 when useSHA1 is set.
func SignMessage(body []byte, cert *x509.Certificate, key crypto.PrivateKey, useSHA1 bool) (string, error) {
	sd, err := pkcs7.NewSignedData(body)
	if err != nil {
		return "", fmt.Errorf("sign message: %w", err)
	}
	if useSHA1 {
		sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA1)
	} else {
		sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	}
	if err := sd.AddSigner(cert, key, pkcs7.SignerInfoConfig{}); err != nil {
		return "", fmt.Errorf("sign message: %w", err)
	}
	sd.Detach()
	der, err := sd.Finish()
	if err != nil {
		return "", fmt.Errorf("sign message: %w", err)
	}
	return base64.StdEncoding.EncodeToString(der), nil
}

// put sends an MDM message (check-in or command channel).
func (d *Device) put(ctx context.Context, url, contentType, op string, body []byte) ([]byte, error) {
	d.mu.Lock()
	e := d.enrollment
	d.mu.Unlock()
	if e == nil {
		return nil, ErrNotEnrolled
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("mdmtest: %s: %w", op, err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", UserAgent)
	if e.SignMessage {
		sig, ok := "", false
		if d.sigReuse != nil {
			sig, ok = d.sigReuse.get(body)
		}
		if !ok {
			if sig, err = SignMessage(body, e.Certificate, e.Key, d.sha1); err != nil {
				return nil, fmt.Errorf("mdmtest: %s: %w", op, err)
			}
			if d.sigReuse != nil {
				d.sigReuse.put(body, sig)
			}
		}
		req.Header.Set(SignatureHeader, sig)
	}
	_, answer, err := d.do(d.httpClient(), req, op)
	if err != nil {
		var he *HTTPError
		if errors.As(err, &he) || errors.Is(err, ErrOffline) {
			return nil, err
		}
		return nil, fmt.Errorf("mdmtest: %s: %w", op, err)
	}
	return answer, nil
}

func (d *Device) httpClient() *http.Client {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.client
}

// Enroll installs the enrollment profile at profileURL the way a Mac does:
// download and verify the profile, get the identity (SCEP or PKCS#12), then
// send Authenticate and TokenUpdate. c is kept for later check-ins and
// Connect; the caller sets its TLS trust.
func (d *Device) Enroll(ctx context.Context, c *http.Client, profileURL string) error {
	if c == nil {
		return errors.New("mdmtest: enroll: nil http client")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, profileURL, nil)
	if err != nil {
		return fmt.Errorf("mdmtest: enroll: %w", err)
	}
	_, body, err := d.do(c, req, "enroll.profile")
	if err != nil {
		return fmt.Errorf("mdmtest: enroll: get profile: %w", err)
	}
	return d.installEnrollmentProfile(ctx, c, body, false)
}

// installEnrollmentProfile installs a downloaded enrollment profile: verify
// it, get the identity, then Authenticate and TokenUpdate (with
// AwaitingConfiguration when the Mac waits in Setup Assistant).
func (d *Device) installEnrollmentProfile(ctx context.Context, c *http.Client, body []byte, awaiting bool) error {
	prof, err := ParseProfile(body, d.roots)
	if err != nil {
		return fmt.Errorf("mdmtest: enroll: %w", err)
	}
	e := &Enrollment{
		Profile:     prof,
		ServerURL:   prof.MDM.ServerURL,
		CheckInURL:  prof.MDM.CheckInURL,
		Topic:       prof.MDM.Topic,
		SignMessage: prof.MDM.SignMessage,
	}
	switch {
	case prof.SCEP != nil:
		key := d.deviceKey()
		start := d.clock.Now()
		cert, err := d.scepEnroll(ctx, c, prof.SCEP, key)
		if d.rec != nil {
			d.rec.Record("enroll.scep", d.clock.Now().Sub(start), err)
		}
		if err != nil {
			return fmt.Errorf("mdmtest: enroll: %w", err)
		}
		e.Certificate, e.Key = cert, key
	case prof.PKCS12 != nil:
		key, cert, err := pkcs12.Decode(prof.PKCS12.Data, prof.PKCS12.Password)
		if err != nil {
			return fmt.Errorf("mdmtest: enroll: pkcs12 identity: %w", err)
		}
		e.Certificate, e.Key = cert, key
	}
	d.mu.Lock()
	d.enrollment = e
	d.client = c
	d.mu.Unlock()

	if err := d.Authenticate(ctx); err != nil {
		return fmt.Errorf("mdmtest: enroll: %w", err)
	}
	if _, err := d.Checkin(ctx, TokenUpdateMessage{
		MessageType: "TokenUpdate", Topic: d.topic(), UDID: d.UDID,
		Token: d.Token, PushMagic: d.PushMagic, AwaitingConfiguration: awaiting,
	}); err != nil {
		return fmt.Errorf("mdmtest: enroll: %w", err)
	}
	return nil
}

// AuthenticateMessage is the Authenticate check-in a Mac sends.
type AuthenticateMessage struct {
	MessageType  string
	Topic        string
	UDID         string
	OSVersion    string `plist:",omitempty"`
	BuildVersion string `plist:",omitempty"`
	ProductName  string
	SerialNumber string
	DeviceName   string
	Model        string
	ModelName    string
}

// TokenUpdateMessage is the TokenUpdate check-in a Mac sends.
type TokenUpdateMessage struct {
	MessageType           string
	Topic                 string
	UDID                  string
	Token                 []byte
	PushMagic             string
	AwaitingConfiguration bool
}

func (d *Device) topic() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.enrollment == nil {
		return ""
	}
	return d.enrollment.Topic
}

// Authenticate sends the Authenticate check-in.
func (d *Device) Authenticate(ctx context.Context) error {
	_, err := d.Checkin(ctx, AuthenticateMessage{
		MessageType: "Authenticate", Topic: d.topic(), UDID: d.UDID,
		OSVersion: d.OSVersion(), BuildVersion: d.BuildVersion(),
		ProductName: d.ProductName, SerialNumber: d.SerialNumber,
		DeviceName: d.DeviceName, Model: d.Model, ModelName: d.ModelName,
	})
	return err
}

// TokenUpdate sends the TokenUpdate check-in with the push token and magic.
func (d *Device) TokenUpdate(ctx context.Context) error {
	_, err := d.Checkin(ctx, TokenUpdateMessage{
		MessageType: "TokenUpdate", Topic: d.topic(), UDID: d.UDID,
		Token: d.Token, PushMagic: d.PushMagic,
	})
	return err
}

// CheckOut sends the CheckOut check-in.
func (d *Device) CheckOut(ctx context.Context) error {
	_, err := d.Checkin(ctx, map[string]any{"MessageType": "CheckOut"})
	return err
}

// SetBootstrapToken escrows the device's BootstrapToken.
func (d *Device) SetBootstrapToken(ctx context.Context) error {
	msg := map[string]any{"MessageType": "SetBootstrapToken", "UDID": d.UDID, "AwaitingConfiguration": false}
	if len(d.BootstrapToken) > 0 {
		msg["BootstrapToken"] = d.BootstrapToken
	}
	_, err := d.Checkin(ctx, msg)
	return err
}

// GetBootstrapToken asks the server for the escrowed bootstrap token; it
// returns nil when the server has none (an empty answer).
func (d *Device) GetBootstrapToken(ctx context.Context) ([]byte, error) {
	answer, err := d.Checkin(ctx, map[string]any{"MessageType": "GetBootstrapToken", "UDID": d.UDID, "AwaitingConfiguration": false})
	if err != nil {
		return nil, err
	}
	return parseBootstrapToken(answer)
}

func parseBootstrapToken(answer []byte) ([]byte, error) {
	if len(bytes.TrimSpace(answer)) == 0 {
		return nil, nil
	}
	var v struct{ BootstrapToken []byte }
	if err := plist.Unmarshal(answer, &v); err != nil {
		return nil, fmt.Errorf("mdmtest: decode GetBootstrapToken answer: %w", err)
	}
	return v.BootstrapToken, nil
}

// DeclarativeManagement sends a DeclarativeManagement check-in for endpoint
// ("tokens", "declaration-items", "status", "declaration/…") with optional
// JSON data, and returns the server's answer.
func (d *Device) DeclarativeManagement(ctx context.Context, endpoint string, data []byte) ([]byte, error) {
	msg := map[string]any{"MessageType": "DeclarativeManagement", "UDID": d.UDID, "Endpoint": endpoint}
	if data != nil {
		msg["Data"] = data
	}
	return d.Checkin(ctx, msg)
}

// Checkin sends any check-in message (a struct or a map encoded as an XML
// plist) to the CheckInURL and returns the answer body. A map without "UDID"
// gets the device's UDID, and one without "Topic" gets the enrollment topic
// for Authenticate, TokenUpdate and CheckOut (on a copy; the caller's map is
// not changed). Non-200 answers are *HTTPError.
func (d *Device) Checkin(ctx context.Context, msg any) ([]byte, error) {
	mt := "Checkin"
	if in, ok := msg.(map[string]any); ok {
		m := make(map[string]any, len(in)+2)
		for k, v := range in {
			m[k] = v
		}
		msg = m
		if _, ok := m["UDID"]; !ok {
			m["UDID"] = d.UDID
		}
		t, _ := m["MessageType"].(string)
		if _, ok := m["Topic"]; !ok && (t == "Authenticate" || t == "TokenUpdate" || t == "CheckOut") {
			m["Topic"] = d.topic()
		}
		if t != "" {
			mt = t
		}
	}
	body, err := plist.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("mdmtest: encode %s check-in: %w", mt, err)
	}
	if mt == "Checkin" {
		var v struct{ MessageType string }
		if plist.Unmarshal(body, &v) == nil && v.MessageType != "" {
			mt = v.MessageType
		}
	}
	d.mu.Lock()
	e := d.enrollment
	d.mu.Unlock()
	if e == nil {
		return nil, ErrNotEnrolled
	}
	return d.put(ctx, e.CheckInURL, ContentTypeCheckin, "checkin."+mt, body)
}
