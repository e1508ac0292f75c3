package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"
)

// ErrUntrusted means a certificate does not chain to the trusted CA at the
// given time (wrong issuer, expired, not yet valid, or not for client
// authentication). The underlying x509 error is wrapped as well.
var ErrUntrusted = errors.New("certificate not trusted")

const (
	minRSABits = 2048
	maxRSABits = 8192
)

// CheckedCSR is a certificate request whose key and self-signature
// CheckCSR has accepted, so that issuing from it does not verify the
// signature a second time. Only CheckCSR makes one.
type CheckedCSR struct {
	csr        *x509.CertificateRequest
	pub        crypto.PublicKey
	rawSubject []byte
}

// CheckCSR checks a certificate request for a device identity: its key must
// be RSA (2048 to 8192 bits) or ECDSA (P-256, P-384, P-521), checked first
// so that no oversized key is ever used, and its self-signature must
// verify.
func CheckCSR(csr *x509.CertificateRequest) (*CheckedCSR, error) {
	if csr == nil {
		return nil, errors.New("nil certificate request")
	}
	if err := checkIdentityKey(csr.PublicKey); err != nil {
		return nil, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("certificate request signature: %w", err)
	}
	return &CheckedCSR{csr: csr, pub: csr.PublicKey, rawSubject: csr.RawSubject}, nil
}

// Request returns the checked request. Callers must not modify it.
func (c *CheckedCSR) Request() *x509.CertificateRequest { return c.csr }

// IssueIdentity issues a device identity certificate for csr, signed by the
// CA: random 128-bit serial, the CSR's subject (byte for byte), client
// authentication, the DeviceIdentityPolicy, valid from shortly before now
// for the configured validity (default one year, never past the CA). The
// CSR must pass CheckCSR. Extensions requested in the CSR are ignored.
func (a *Authority) IssueIdentity(csr *x509.CertificateRequest, now time.Time) (*x509.Certificate, error) {
	checked, err := CheckCSR(csr)
	if err != nil {
		return nil, fmt.Errorf("issue identity: %w", err)
	}
	return a.issueIdentity(checked, now, nil)
}

// IssueCheckedIdentity is IssueIdentity for a request CheckCSR has already
// accepted.
func (a *Authority) IssueCheckedIdentity(csr *CheckedCSR, now time.Time) (*x509.Certificate, error) {
	return a.issueIdentity(csr, now, nil)
}

// issueIdentity is IssueCheckedIdentity with server-chosen subject
// alternative name URIs.
func (a *Authority) issueIdentity(csr *CheckedCSR, now time.Time, uris []*url.URL) (*x509.Certificate, error) {
	if csr == nil {
		return nil, errors.New("issue identity: nil certificate request")
	}
	if err := checkValidity(a.ca, now); err != nil {
		return nil, fmt.Errorf("issue identity: CA certificate %w", err)
	}
	tmpl := &x509.Certificate{
		RawSubject:  csr.rawSubject,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		URIs:        uris,
		Policies:    []x509.OID{DeviceIdentityPolicy},
	}
	cert, err := a.issue(tmpl, csr.pub, now, now.Add(a.identityValidity))
	if err != nil {
		return nil, fmt.Errorf("issue identity: %w", err)
	}
	// The certificate chains to the CA and allows client authentication by
	// construction, so the device's first request need not verify the
	// chain (an ECDSA verification and a parse, ~0.2 ms of an enrolment).
	a.cache.add(sha256.Sum256(cert.Raw), a.trustWindow(cert))
	return cert, nil
}

func checkIdentityKey(pub any) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < minRSABits || n > maxRSABits {
			return fmt.Errorf("RSA key of %d bits, want %d to %d", n, minRSABits, maxRSABits)
		}
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return errors.New("unsupported ECDSA curve")
		}
	default:
		return fmt.Errorf("unsupported public key type %T, want RSA or ECDSA", pub)
	}
	return nil
}

// VerifyIdentity checks that cert chains to the CA at now and was issued as
// a device identity (client authentication and DeviceIdentityPolicy; see
// checkDeviceIdentity). Successful results are cached by the certificate's
// SHA-256 for as long as the certificate and the CA are both valid, since
// this runs on every device request. Failures wrap ErrUntrusted.
func (a *Authority) VerifyIdentity(cert *x509.Certificate, now time.Time) error {
	if cert == nil {
		return fmt.Errorf("%w: no certificate", ErrUntrusted)
	}
	key := sha256.Sum256(cert.Raw)
	if a.cache.hit(key, now) {
		return nil
	}
	if err := checkDeviceIdentity(cert, a.legacyBefore); err != nil {
		return err
	}
	if err := VerifyChain(cert, a.pool, now); err != nil {
		return err
	}
	a.cache.add(key, a.trustWindow(cert))
	return nil
}

// trustWindow is when a certificate that chains to the CA is valid: while
// both it and the CA are.
func (a *Authority) trustWindow(cert *x509.Certificate) window {
	nb, na := cert.NotBefore, cert.NotAfter
	if a.ca.NotBefore.After(nb) {
		nb = a.ca.NotBefore
	}
	if a.ca.NotAfter.Before(na) {
		na = a.ca.NotAfter
	}
	return window{notBefore: nb, notAfter: na, bound: boundUDIDOfParsed(cert)}
}

// VerifyChain checks that cert chains to one of roots at now, allows
// client authentication, and is not itself a CA. It does not cache. Failures wrap ErrUntrusted.
func VerifyChain(cert *x509.Certificate, roots *x509.CertPool, now time.Time) error {
	switch {
	case cert == nil:
		return fmt.Errorf("%w: no certificate", ErrUntrusted)
	case roots == nil:
		return fmt.Errorf("%w: no trusted roots", ErrUntrusted)
	case now.IsZero():
		// x509 would read the wall clock; refuse instead.
		return fmt.Errorf("%w: zero verification time", ErrUntrusted)
	case cert.IsCA:
		return fmt.Errorf("%w: a CA certificate is not a device identity", ErrUntrusted)
	}
	_, err := cert.Verify(x509.VerifyOptions{
		Roots:       roots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUntrusted, err)
	}
	return nil
}

// HashCert returns hex(sha256(cert.Raw)), the key that binds an identity
// certificate to an enrollment. It returns "" for a nil certificate.
func HashCert(cert *x509.Certificate) string {
	if cert == nil {
		return ""
	}
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// window is the time range during which a cached verification holds,
// with the certificate's bound UDID (BoundUDID), so that a cached signer
// need not be parsed for it.
type window struct {
	notBefore, notAfter time.Time
	bound               string
}

// verifyCache remembers successful verifications. It is bounded; when full
// an arbitrary entry is evicted.
type verifyCache struct {
	max int
	mu  sync.RWMutex
	m   map[[sha256.Size]byte]window
}

func newVerifyCache(size int) *verifyCache {
	return &verifyCache{max: size, m: make(map[[sha256.Size]byte]window)}
}

func (c *verifyCache) hit(key [sha256.Size]byte, now time.Time) bool {
	_, ok := c.lookup(key, now)
	return ok
}

// lookup returns the cached window of key when it holds at now.
func (c *verifyCache) lookup(key [sha256.Size]byte, now time.Time) (window, bool) {
	if c.max == 0 {
		return window{}, false
	}
	c.mu.RLock()
	w, ok := c.m[key]
	c.mu.RUnlock()
	if !ok {
		return window{}, false
	}
	if now.Before(w.notBefore) || now.After(w.notAfter) {
		c.mu.Lock()
		delete(c.m, key)
		c.mu.Unlock()
		return window{}, false
	}
	return w, true
}

func (c *verifyCache) add(key [sha256.Size]byte, w window) {
	if c.max == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; !ok && len(c.m) >= c.max {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[key] = w
}

func (c *verifyCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
