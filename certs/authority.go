package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// File names inside the Authority directory.
const (
	CACertFile     = "ca.pem"
	CAKeyFile      = "ca.key"
	RACertFile     = "scep-ra.pem"
	RAKeyFile      = "scep-ra.key"
	SignerCertFile = "profile-signer.pem"
	SignerKeyFile  = "profile-signer.key"
)

// oidKPCMCRA is id-kp-cmcRA, the extended key usage of a registration
// authority (RFC 6402 section 2.10).
var oidKPCMCRA = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 28}

const (
	caValidity              = 10 * 365 * 24 * time.Hour
	defaultIdentityValidity = 365 * 24 * time.Hour
	defaultVerifyCacheSize  = 200_000
	// backdate is subtracted from now for every NotBefore, so a device or
	// proxy whose clock is a little behind still accepts a fresh certificate.
	backdate   = time.Hour
	rsaKeyBits = 2048
)

// Authority is Sundial's certificate authority: an ECDSA P-256 CA that
// issues device identities and the server TLS certificate, an RSA SCEP
// registration authority certificate, and an RSA profile-signing
// certificate, both issued by the CA. It is safe for concurrent use.
type Authority struct {
	ca        *x509.Certificate
	caKey     crypto.Signer
	pool      *x509.CertPool
	ra        *x509.Certificate
	raKey     *rsa.PrivateKey
	signer    *x509.Certificate
	signerKey crypto.Signer

	identityValidity time.Duration
	cache            *verifyCache
	// legacyBefore: identities issued before device identities carried
	// DeviceIdentityPolicy (see loadOrCreatePolicySince).
	legacyBefore time.Time
}

// Option configures an Authority.
type Option func(*options)

type options struct {
	identityValidity time.Duration
	cacheSize        int
}

// WithIdentityValidity sets how long issued device identities are valid
// (default one year). It must be positive.
func WithIdentityValidity(d time.Duration) Option {
	return func(o *options) { o.identityValidity = d }
}

// WithVerifyCacheSize bounds the number of identity verifications
// VerifyIdentity remembers (default 200,000). Zero disables the cache.
func WithVerifyCacheSize(n int) Option {
	return func(o *options) { o.cacheSize = n }
}

// LoadOrCreate loads the Authority stored in dir, creating what is missing.
// On first start it generates the CA, the SCEP RA and the profile signer and
// writes them as PEM (keys mode 0600, each file written atomically). Later
// starts reuse the files. A missing RA or profile signer is issued by the
// existing CA; a corrupt, mismatched, expired or half-present file is an
// error and is never replaced.
func LoadOrCreate(dir string, now time.Time, opts ...Option) (*Authority, error) {
	o := options{identityValidity: defaultIdentityValidity, cacheSize: defaultVerifyCacheSize}
	for _, opt := range opts {
		opt(&o)
	}
	if o.identityValidity <= 0 {
		return nil, fmt.Errorf("identity validity must be positive, got %s", o.identityValidity)
	}
	if o.cacheSize < 0 {
		return nil, fmt.Errorf("verify cache size must not be negative, got %d", o.cacheSize)
	}
	if now.IsZero() {
		return nil, errors.New("load authority: zero time")
	}
	if dir == "" {
		return nil, errors.New("load authority: empty directory")
	}

	caPaths := pairPaths{name: "CA", cert: filepath.Join(dir, CACertFile), key: filepath.Join(dir, CAKeyFile)}
	raPaths := pairPaths{name: "SCEP RA", cert: filepath.Join(dir, RACertFile), key: filepath.Join(dir, RAKeyFile)}
	signerPaths := pairPaths{name: "profile signer", cert: filepath.Join(dir, SignerCertFile), key: filepath.Join(dir, SignerKeyFile)}

	// Check and load everything present before writing anything, so an
	// inconsistent directory is reported and left exactly as it was.
	caPresent, err := caPaths.state()
	if err != nil {
		return nil, err
	}
	raPresent, err := raPaths.state()
	if err != nil {
		return nil, err
	}
	signerPresent, err := signerPaths.state()
	if err != nil {
		return nil, err
	}
	if !caPresent && (raPresent || signerPresent) {
		return nil, fmt.Errorf("CA files %s and %s are missing but certificates issued by a CA remain in %s; restore the CA or remove the directory to start over", caPaths.cert, caPaths.key, dir)
	}

	a := &Authority{identityValidity: o.identityValidity, cache: newVerifyCache(o.cacheSize)}
	if caPresent {
		certs, key, err := caPaths.load(false)
		if err != nil {
			return nil, err
		}
		if err := checkCA(certs[0], now); err != nil {
			return nil, fmt.Errorf("CA certificate %s: %w", caPaths.cert, err)
		}
		a.ca, a.caKey = certs[0], key
	}
	if raPresent {
		certs, key, err := raPaths.load(false)
		if err != nil {
			return nil, err
		}
		rk, ok := key.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("SCEP RA key %s: is %T, want RSA", raPaths.key, key)
		}
		if err := checkIssued(certs[0], a.ca, now); err != nil {
			return nil, fmt.Errorf("SCEP RA certificate %s: %w", raPaths.cert, err)
		}
		a.ra, a.raKey = certs[0], rk
	}
	if signerPresent {
		certs, key, err := signerPaths.load(false)
		if err != nil {
			return nil, err
		}
		if err := checkIssued(certs[0], a.ca, now); err != nil {
			return nil, fmt.Errorf("profile signer certificate %s: %w", signerPaths.cert, err)
		}
		a.signer, a.signerKey = certs[0], key
	}

	// Generate what is missing.
	if !caPresent {
		if err := os.MkdirAll(dir, stateDirMode); err != nil {
			return nil, fmt.Errorf("create authority directory: %w", err)
		}
		if a.ca, a.caKey, err = newCA(now); err != nil {
			return nil, err
		}
		if err := caPaths.write(a.caKey, a.ca); err != nil {
			return nil, err
		}
	}
	a.pool = x509.NewCertPool()
	a.pool.AddCert(a.ca)
	if !raPresent {
		tmpl := &x509.Certificate{
			Subject:  pkix.Name{CommonName: "Sundial SCEP RA", Organization: []string{"Sundial"}},
			KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment,
			// id-kp-cmcRA (RFC 6402) only, so the public RA certificate
			// passes for no TLS client or device (x509 treats no EKU as
			// any purpose).
			UnknownExtKeyUsage: []asn1.ObjectIdentifier{oidKPCMCRA},
		}
		cert, key, err := a.issueRSA(tmpl, now)
		if err != nil {
			return nil, fmt.Errorf("issue SCEP RA certificate: %w", err)
		}
		if err := raPaths.write(key, cert); err != nil {
			return nil, err
		}
		a.ra, a.raKey = cert, key
	}
	if !signerPresent {
		tmpl := &x509.Certificate{
			Subject:  pkix.Name{CommonName: "Sundial Profile Signer", Organization: []string{"Sundial"}},
			KeyUsage: x509.KeyUsageDigitalSignature,
			// Code signing only: the public signer certificate must not
			// pass for a TLS client or a device.
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		}
		cert, key, err := a.issueRSA(tmpl, now)
		if err != nil {
			return nil, fmt.Errorf("issue profile signer certificate: %w", err)
		}
		if err := signerPaths.write(key, cert); err != nil {
			return nil, err
		}
		a.signer, a.signerKey = cert, key
	}
	if a.legacyBefore, err = loadOrCreatePolicySince(dir, caPresent, a.ca, now); err != nil {
		return nil, err
	}
	return a, nil
}

// CA returns the CA certificate. Callers must not modify it.
func (a *Authority) CA() *x509.Certificate { return a.ca }

// CAPool returns a new pool holding only the CA certificate, e.g. for
// tls.Config.ClientCAs.
func (a *Authority) CAPool() *x509.CertPool { return a.pool.Clone() }

// RA returns the SCEP registration authority certificate and its key.
// Devices encrypt SCEP requests to it and it signs CertRep messages.
func (a *Authority) RA() (*x509.Certificate, *rsa.PrivateKey) { return a.ra, a.raKey }

// ProfileSigner returns the certificate and key that sign enrollment
// profiles (see SignProfile).
func (a *Authority) ProfileSigner() (*x509.Certificate, crypto.Signer) {
	return a.signer, a.signerKey
}

// issueRSA generates an RSA key and issues tmpl for it, valid as long as
// the CA.
func (a *Authority) issueRSA(tmpl *x509.Certificate, now time.Time) (*x509.Certificate, *rsa.PrivateKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, rsaKeyBits)
	if err != nil {
		return nil, nil, fmt.Errorf("generate RSA key: %w", err)
	}
	cert, err := a.issue(tmpl, &key.PublicKey, now, a.ca.NotAfter)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// newCA generates a self-signed ECDSA P-256 CA valid for about ten years.
func newCA(now time.Time) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Sundial CA", Organization: []string{"Sundial"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	return cert, key, nil
}

// issue signs tmpl with the CA. It fills the serial and the validity
// (backdated, and never past the CA's own NotAfter or notAfter).
func (a *Authority) issue(tmpl *x509.Certificate, pub crypto.PublicKey, now, notAfter time.Time) (*x509.Certificate, error) {
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = now.Add(-backdate)
	if tmpl.NotBefore.Before(a.ca.NotBefore) {
		tmpl.NotBefore = a.ca.NotBefore
	}
	tmpl.NotAfter = notAfter
	if tmpl.NotAfter.After(a.ca.NotAfter) {
		tmpl.NotAfter = a.ca.NotAfter
	}
	tmpl.BasicConstraintsValid = true
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.ca, pub, a.caKey)
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse issued certificate: %w", err)
	}
	return cert, nil
}

// newSerial returns a random, positive 128-bit serial number.
func newSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("generate serial number: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

// checkCA verifies a loaded CA certificate can sign and is valid at now.
func checkCA(ca *x509.Certificate, now time.Time) error {
	if !ca.BasicConstraintsValid || !ca.IsCA {
		return errors.New("not a CA certificate (basic constraints CA:FALSE)")
	}
	if ca.KeyUsage != 0 && ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		return errors.New("CA certificate lacks the certificate-signing key usage")
	}
	return checkValidity(ca, now)
}

// checkIssued verifies cert was signed by ca and is valid at now.
func checkIssued(cert, ca *x509.Certificate, now time.Time) error {
	if err := cert.CheckSignatureFrom(ca); err != nil {
		return fmt.Errorf("not issued by the CA in this directory: %w", err)
	}
	return checkValidity(cert, now)
}

func checkValidity(cert *x509.Certificate, now time.Time) error {
	if now.Before(cert.NotBefore) {
		return fmt.Errorf("not valid until %s", cert.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(cert.NotAfter) {
		return fmt.Errorf("expired at %s", cert.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}
