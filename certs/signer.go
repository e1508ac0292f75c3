package certs

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Signer is the certificate a device request presented, as its DER and
// SHA-256. The certificate is parsed only when needed: a device whose
// chain check is cached (Authority.VerifySigner) never has it parsed again,
// which was about 7 % of the server's CPU per Idle connect.
type Signer struct {
	Raw  []byte
	Sum  [sha256.Size]byte
	cert *x509.Certificate

	// bound is BoundUDID(Raw) when boundKnown: VerifySigner sets it from
	// its cache.
	bound      string
	boundKnown bool
}

// SignerOf wraps a parsed certificate.
func SignerOf(cert *x509.Certificate) *Signer {
	if cert == nil {
		return nil
	}
	return &Signer{Raw: cert.Raw, Sum: sha256.Sum256(cert.Raw), cert: cert}
}

// Certificate parses the certificate (once).
func (s *Signer) Certificate() (*x509.Certificate, error) {
	if s.cert == nil {
		c, err := x509.ParseCertificate(s.Raw)
		if err != nil {
			return nil, fmt.Errorf("%w: parse certificate: %w", ErrUntrusted, err)
		}
		s.cert = c
	}
	return s.cert, nil
}

// BoundUDID is BoundUDID(s.Raw), without parsing the certificate when
// VerifySigner answered from its cache or it is parsed already.
func (s *Signer) BoundUDID() (string, error) {
	switch {
	case s.boundKnown:
		return s.bound, nil
	case s.cert != nil:
		return boundUDIDOfParsed(s.cert), nil
	}
	return BoundUDID(s.Raw)
}

// boundUDIDOfParsed is BoundUDID(cert.Raw) for a certificate parsed from
// cert.Raw.
func boundUDIDOfParsed(cert *x509.Certificate) string {
	if !bytes.Contains(cert.Raw, boundUDIDMarker) {
		return ""
	}
	return BoundUDIDOf(cert)
}

// NotAfter returns when the certificate expires. Call it on a Signer that
// VerifySigner accepted: a certificate it did not parse (its chain check
// was cached) is byte for byte one that parsed before, so only the
// validity is read from the DER; anything that reading declines is parsed
// in full.
func (s *Signer) NotAfter() (time.Time, error) {
	if s.cert == nil {
		if t, ok := notAfterOf(s.Raw); ok {
			return t, nil
		}
	}
	cert, err := s.Certificate()
	if err != nil {
		return time.Time{}, err
	}
	return cert.NotAfter, nil
}

// notAfterOf reads a DER certificate's notAfter as crypto/x509 does
// (UTCTime or GeneralizedTime), without parsing the rest.
func notAfterOf(raw []byte) (time.Time, bool) {
	in := cryptobyte.String(raw)
	var cert, tbs, validity cryptobyte.String
	if !in.ReadASN1(&cert, cbasn1.SEQUENCE) || !in.Empty() ||
		!cert.ReadASN1(&tbs, cbasn1.SEQUENCE) ||
		!tbs.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) || // version
		!tbs.SkipASN1(cbasn1.INTEGER) || // serial number
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // signature algorithm
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // issuer
		!tbs.ReadASN1(&validity, cbasn1.SEQUENCE) {
		return time.Time{}, false
	}
	var notBefore, notAfter time.Time
	if !readX509Time(&validity, &notBefore) || !readX509Time(&validity, &notAfter) || !validity.Empty() {
		return time.Time{}, false
	}
	return notAfter, true
}

func readX509Time(s *cryptobyte.String, t *time.Time) bool {
	switch {
	case s.PeekASN1Tag(cbasn1.UTCTime):
		return s.ReadASN1UTCTime(t)
	case s.PeekASN1Tag(cbasn1.GeneralizedTime):
		return s.ReadASN1GeneralizedTime(t)
	}
	return false
}

// Hash is hex(Sum), the key that binds an identity certificate to an
// enrollment (HashCert of the certificate).
func (s *Signer) Hash() string { return hex.EncodeToString(s.Sum[:]) }

// VerifySigner is VerifyIdentity for a Signer: a certificate verified
// before and valid at now is accepted from the cache by its SHA-256,
// without parsing it.
func (a *Authority) VerifySigner(s *Signer, now time.Time) error {
	if s == nil {
		return fmt.Errorf("%w: no certificate", ErrUntrusted)
	}
	if w, ok := a.cache.lookup(s.Sum, now); ok {
		s.bound, s.boundKnown = w.bound, true
		return nil
	}
	cert, err := s.Certificate()
	if err != nil {
		return err
	}
	return a.VerifyIdentity(cert, now)
}
