package mdmtest

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/smallstep/scep"
	"github.com/smallstep/scep/x509util"
)

// SCEP content types (RFC 8894).
const (
	contentTypeCACert   = "application/x-x509-ca-cert"
	contentTypeCARACert = "application/x-x509-ca-ra-cert"
	contentTypePKI      = "application/x-pki-message"
)

// scepCaps is the parsed GetCACaps answer.
type scepCaps map[string]bool

func parseCaps(body []byte) scepCaps {
	caps := make(scepCaps)
	for _, line := range strings.Split(string(body), "\n") {
		if c := strings.TrimSpace(line); c != "" {
			caps[strings.ToUpper(c)] = true
		}
	}
	return caps
}

// ParseCACerts decodes a GetCACert answer: a DER certificate for
// application/x-x509-ca-cert, or a degenerate PKCS#7 with the CA and RA
// certificates for application/x-x509-ca-ra-cert. It returns all
// certificates and the recipients to encrypt a PKCSReq to: a lone CA
// certificate; else those with a key encipherment usage (the RA), else any
// RSA certificate without key usage restrictions.
func ParseCACerts(contentType string, body []byte) (all, recipients []*x509.Certificate, err error) {
	mt, _, _ := mime.ParseMediaType(contentType)
	switch mt {
	case contentTypeCARACert:
		all, err = scep.CACerts(body)
		if err != nil {
			return nil, nil, fmt.Errorf("parse ca-ra certificates: %w", err)
		}
	case contentTypeCACert, "":
		c, perr := x509.ParseCertificate(body)
		if perr != nil {
			return nil, nil, fmt.Errorf("parse ca certificate: %w", perr)
		}
		all = []*x509.Certificate{c}
	default:
		return nil, nil, fmt.Errorf("unexpected GetCACert content type %q", contentType)
	}
	if len(all) == 0 {
		return nil, nil, errors.New("GetCACert returned no certificates")
	}
	if len(all) == 1 {
		// A lone CA certificate is the recipient whatever its key usage.
		if _, ok := all[0].PublicKey.(*rsa.PublicKey); !ok {
			return nil, nil, errors.New("GetCACert returned a non-RSA certificate")
		}
		return all, all, nil
	}
	recipients = scep.EnciphermentCertsSelector()(all)
	if len(recipients) == 0 {
		for _, c := range all {
			if _, ok := c.PublicKey.(*rsa.PublicKey); ok && c.KeyUsage == 0 {
				recipients = append(recipients, c)
			}
		}
	}
	if len(recipients) == 0 {
		return nil, nil, errors.New("GetCACert returned no certificate usable for key encipherment")
	}
	return all, recipients, nil
}

func checkFingerprint(certs []*x509.Certificate, fp []byte) error {
	for _, c := range certs {
		var sum []byte
		switch len(fp) {
		case md5.Size:
			s := md5.Sum(c.Raw)
			sum = s[:]
		case sha1.Size:
			s := sha1.Sum(c.Raw)
			sum = s[:]
		case sha256.Size:
			s := sha256.Sum256(c.Raw)
			sum = s[:]
		default:
			return fmt.Errorf("CAFingerprint has unsupported length %d", len(fp))
		}
		if bytes.Equal(sum, fp) {
			return nil
		}
	}
	return errors.New("no CA certificate matches CAFingerprint")
}

// scepEnroll gets a certificate for key over SCEP like macOS does.
func (d *Device) scepEnroll(ctx context.Context, c *http.Client, p *SCEPPayload, key *rsa.PrivateKey) (*x509.Certificate, error) {
	u, err := url.Parse(p.URL)
	if err != nil {
		return nil, fmt.Errorf("scep url: %w", err)
	}
	get := func(op string, extra url.Values) (*http.Response, []byte, error) {
		q := u.Query()
		q.Set("operation", op)
		for k, v := range extra {
			q[k] = v
		}
		uu := *u
		uu.RawQuery = q.Encode()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, uu.String(), nil)
		if err != nil {
			return nil, nil, err
		}
		return d.do(c, req, "scep."+op)
	}

	_, capsBody, err := get("GetCACaps", nil)
	var he *HTTPError
	if errors.As(err, &he) {
		capsBody = nil // servers without GetCACaps get the most conservative client
	} else if err != nil {
		return nil, fmt.Errorf("scep GetCACaps: %w", err)
	}
	caps := parseCaps(capsBody)

	resp, body, err := get("GetCACert", nil)
	if err != nil {
		return nil, fmt.Errorf("scep GetCACert: %w", err)
	}
	caCerts, recipients, err := ParseCACerts(resp.Header.Get("Content-Type"), body)
	if err != nil {
		return nil, fmt.Errorf("scep GetCACert: %w", err)
	}
	if len(p.CAFingerprint) > 0 {
		if err := checkFingerprint(caCerts, p.CAFingerprint); err != nil {
			return nil, fmt.Errorf("scep: %w", err)
		}
	}

	subject := p.Subject
	if len(subject.ExtraNames) == 0 {
		subject = pkix.Name{CommonName: d.UDID}
	}
	now := d.clock.Now()
	csrDER, err := x509util.CreateCertificateRequest(rand.Reader, &x509util.CertificateRequest{
		CertificateRequest: x509.CertificateRequest{
			Subject:            subject,
			SignatureAlgorithm: x509.SHA256WithRSA,
		},
		ChallengePassword: p.Challenge,
	}, key)
	if err != nil {
		return nil, fmt.Errorf("scep csr: %w", err)
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("scep csr: %w", err)
	}
	// Like a real client, sign the request with a throwaway self-signed
	// certificate for the same key; the CA encrypts its answer to it.
	serial, err := randSerial()
	if err != nil {
		return nil, fmt.Errorf("scep signer serial: %w", err)
	}
	signerDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: serial,
		Subject:      subject,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}, &x509.Certificate{SerialNumber: serial, Subject: subject}, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("scep signer certificate: %w", err)
	}
	signer, err := x509.ParseCertificate(signerDER)
	if err != nil {
		return nil, fmt.Errorf("scep signer certificate: %w", err)
	}
	msg, err := scep.NewCSRRequest(csr, &scep.PKIMessage{
		MessageType: scep.PKCSReq,
		Recipients:  recipients,
		SignerKey:   key,
		SignerCert:  signer,
	})
	if err != nil {
		return nil, fmt.Errorf("scep PKCSReq: %w", err)
	}

	var req *http.Request
	if caps["POSTPKIOPERATION"] {
		q := u.Query()
		q.Set("operation", "PKIOperation")
		uu := *u
		uu.RawQuery = q.Encode()
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, uu.String(), bytes.NewReader(msg.Raw))
		if err == nil {
			req.Header.Set("Content-Type", contentTypePKI)
		}
	} else {
		q := u.Query()
		q.Set("operation", "PKIOperation")
		q.Set("message", base64.StdEncoding.EncodeToString(msg.Raw))
		uu := *u
		uu.RawQuery = q.Encode()
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, uu.String(), nil)
	}
	if err != nil {
		return nil, fmt.Errorf("scep PKIOperation: %w", err)
	}
	_, repBody, err := d.do(c, req, "scep.PKIOperation")
	if err != nil {
		return nil, fmt.Errorf("scep PKIOperation: %w", err)
	}
	rep, err := scep.ParsePKIMessage(repBody, scep.WithCACerts(caCerts))
	if err != nil {
		return nil, fmt.Errorf("scep CertRep: %w", err)
	}
	if rep.MessageType != scep.CertRep || rep.CertRepMessage == nil {
		return nil, fmt.Errorf("scep: answer has message type %s, want CertRep", rep.MessageType)
	}
	if rep.TransactionID != msg.TransactionID {
		return nil, errors.New("scep CertRep: transaction ID does not match the request")
	}
	if !bytes.Equal(rep.RecipientNonce, msg.SenderNonce) {
		return nil, errors.New("scep CertRep: recipient nonce does not match the request")
	}
	switch rep.PKIStatus {
	case scep.SUCCESS:
	case scep.FAILURE:
		return nil, fmt.Errorf("scep CertRep: FAILURE (%s)", rep.FailInfo)
	default:
		return nil, fmt.Errorf("scep CertRep: status %s not supported", rep.PKIStatus)
	}
	if err := rep.DecryptPKIEnvelope(signer, key); err != nil {
		return nil, fmt.Errorf("scep CertRep: decrypt: %w", err)
	}
	cert := rep.Certificate
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, errors.New("scep CertRep: issued certificate is not for the device key")
	}
	return cert, nil
}

func randSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 63))
}
