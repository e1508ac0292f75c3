package certs

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
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
//
// A certificate issued before this rule (its NotBefore earlier than
// legacyBefore) is accepted without the policy if it lists client
// authentication as its only extended key usage, as Sundial's identities
// always did: the RA and profile-signer certificates of that time had no
// EKU at all and the server certificate server authentication only, so
// none of them passes, and the Macs enrolled before the upgrade keep
// working until their identities are renewed.
func checkDeviceIdentity(cert *x509.Certificate, legacyBefore time.Time) error {
	if !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return fmt.Errorf("%w: no client-authentication extended key usage", ErrUntrusted)
	}
	if slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageAny) {
		return fmt.Errorf("%w: any-purpose extended key usage", ErrUntrusted)
	}
	if slices.ContainsFunc(cert.Policies, DeviceIdentityPolicy.Equal) {
		return nil
	}
	if cert.NotBefore.Before(legacyBefore) && len(cert.ExtKeyUsage) == 1 && len(cert.UnknownExtKeyUsage) == 0 {
		return nil
	}
	return fmt.Errorf("%w: not issued as a Sundial device identity (policy %s missing)", ErrUntrusted, DeviceIdentityPolicy)
}

// PolicySinceFile records, in the Authority directory, when device
// identities started carrying DeviceIdentityPolicy.
const PolicySinceFile = "identity-policy-since"

// loadOrCreatePolicySince reads PolicySinceFile, writing it when missing:
// for a CA made now, identities carried the policy from the start (the CA's
// NotBefore); for an existing CA (an upgrade), from now on.
func loadOrCreatePolicySince(dir string, caExisted bool, ca *x509.Certificate, now time.Time) (time.Time, error) {
	path := filepath.Join(dir, PolicySinceFile)
	b, err := os.ReadFile(path)
	if err == nil {
		t, err := time.Parse(time.RFC3339, strings.TrimSpace(string(b)))
		if err != nil {
			return time.Time{}, fmt.Errorf("%s: %w", path, err)
		}
		return t, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return time.Time{}, fmt.Errorf("read %s: %w", path, err)
	}
	since := ca.NotBefore
	if caExisted {
		since = now
	}
	since = since.UTC().Truncate(time.Second)
	if err := writeFileAtomic(path, []byte(since.Format(time.RFC3339)+"\n"), keyFileMode); err != nil {
		return time.Time{}, fmt.Errorf("write %s: %w", path, err)
	}
	return since, nil
}
