package certs

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// BoundUDIDScheme is the URI scheme of the subject alternative name that
// marks a device identity issued against a SCEP challenge bound to one UDID
// (Automated Device Enrollment): "sundial-udid:<UDID>". Sundial writes it;
// a CSR cannot ask for it, because requested extensions are ignored.
const BoundUDIDScheme = "sundial-udid"

// MaxBoundUDID caps the UDID written into an identity certificate.
const MaxBoundUDID = 64

var boundUDIDMarker = []byte(BoundUDIDScheme + ":")

// ValidUDID reports whether udid looks like an Apple UDID: 1 to
// MaxBoundUDID letters, digits and dashes (a UUID on Intel Macs,
// "00008103-001A2B3C4D5E6F7A" on Apple silicon).
func ValidUDID(udid string) bool {
	if udid == "" || len(udid) > MaxBoundUDID {
		return false
	}
	for _, c := range udid {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '-') {
			return false
		}
	}
	return true
}

// IssueBoundIdentity is IssueIdentity for a challenge bound to udid: the
// certificate names udid in a subject alternative name URI, so whoever later
// sees the certificate (Authenticate) knows which device it was issued for.
func (a *Authority) IssueBoundIdentity(csr *x509.CertificateRequest, udid string, now time.Time) (*x509.Certificate, error) {
	checked, err := CheckCSR(csr)
	if err != nil {
		return nil, fmt.Errorf("issue bound identity: %w", err)
	}
	return a.IssueCheckedBoundIdentity(checked, udid, now)
}

// IssueCheckedBoundIdentity is IssueBoundIdentity for a request CheckCSR
// has already accepted.
func (a *Authority) IssueCheckedBoundIdentity(csr *CheckedCSR, udid string, now time.Time) (*x509.Certificate, error) {
	if !ValidUDID(udid) {
		return nil, errors.New("issue bound identity: invalid udid")
	}
	u := &url.URL{Scheme: BoundUDIDScheme, Opaque: udid}
	return a.issueIdentity(csr, now, []*url.URL{u})
}

// BoundUDID returns the UDID a device identity was bound to at issuance, or
// "" for an identity issued without a bound challenge. raw is the DER
// certificate; most certificates are not bound, and for those the answer
// costs a byte search, not a parse.
func BoundUDID(raw []byte) (string, error) {
	if !bytes.Contains(raw, boundUDIDMarker) {
		return "", nil
	}
	cert, err := x509.ParseCertificate(raw)
	if err != nil {
		return "", fmt.Errorf("bound udid: %w", err)
	}
	return BoundUDIDOf(cert), nil
}

// BoundUDIDOf returns the bound UDID of a parsed certificate, or "".
func BoundUDIDOf(cert *x509.Certificate) string {
	for _, u := range cert.URIs {
		if strings.EqualFold(u.Scheme, BoundUDIDScheme) && ValidUDID(u.Opaque) {
			return u.Opaque
		}
	}
	return ""
}
