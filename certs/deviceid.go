package certs

import (
	"crypto/x509"
	"fmt"
	"slices"
)

// DeviceIdentityPolicy is the certificate policy OID that Sundial writes
// into every device identity it issues (IssueIdentity) and into nothing
// else. It is a UUID-derived OID (ITU-T X.667, arc 2.25), so it needs no
// registration and cannot clash with another issuer's policy. Only a
// certificate carrying it and the client-authentication EKU speaks for a
// device: the SCEP RA, the profile signer and the server TLS certificate,
// which are all public and signed by the same CA, never do.
var DeviceIdentityPolicy = mustOID("2.25.122248065524636218578382219918978230884")

func mustOID(s string) x509.OID {
	oid, err := x509.ParseOID(s)
	if err != nil {
		panic(fmt.Sprintf("certs: bad OID %s: %v", s, err))
	}
	return oid
}

// checkDeviceIdentity refuses a certificate that Sundial did not issue as a
// device identity: it must list client authentication explicitly (x509
// treats a certificate without EKUs as good for anything) and carry
// DeviceIdentityPolicy. The chain is VerifyChain's job.
func checkDeviceIdentity(cert *x509.Certificate) error {
	if !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return fmt.Errorf("%w: no client-authentication extended key usage", ErrUntrusted)
	}
	if slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageAny) {
		return fmt.Errorf("%w: any-purpose extended key usage", ErrUntrusted)
	}
	if !slices.ContainsFunc(cert.Policies, DeviceIdentityPolicy.Equal) {
		return fmt.Errorf("%w: not issued as a Sundial device identity (policy %s missing)", ErrUntrusted, DeviceIdentityPolicy)
	}
	return nil
}
