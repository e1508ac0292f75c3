package certs_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"net/url"
	"testing"

	"github.com/sundial-mdm/sundial/certs"
	"github.com/sundial-mdm/sundial/certs/certstest"
)

func TestIssueBoundIdentity(t *testing.T) {
	a := certstest.NewAuthority(t, t0)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr := newCSR(t, key, pkix.Name{CommonName: "Sundial Identity"})
	const udid = "00008103-001A2B3C4D5E6F7A"
	cert, err := a.IssueBoundIdentity(csr, udid, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.VerifyIdentity(cert, t0); err != nil {
		t.Fatalf("bound identity does not verify: %v", err)
	}
	if have, err := certs.BoundUDID(cert.Raw); err != nil || have != udid {
		t.Fatalf("BoundUDID = %q, %v; want %q", have, err, udid)
	}

	plain, err := a.IssueIdentity(csr, t0)
	if err != nil {
		t.Fatal(err)
	}
	if have, err := certs.BoundUDID(plain.Raw); err != nil || have != "" {
		t.Fatalf("BoundUDID(unbound) = %q, %v; want empty", have, err)
	}

	for _, bad := range []string{"", "with space", "a/b", string(make([]byte, 65))} {
		if _, err := a.IssueBoundIdentity(csr, bad, t0); err == nil {
			t.Errorf("IssueBoundIdentity(%q) succeeded", bad)
		}
	}
}

// A CSR cannot smuggle the marker in: requested extensions are ignored.
func TestBoundUDIDNotFromCSR(t *testing.T) {
	a := certstest.NewAuthority(t, t0)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "x"},
		URIs:    []*url.URL{{Scheme: certs.BoundUDIDScheme, Opaque: "VICTIM-UDID"}},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := a.IssueIdentity(csr, t0)
	if err != nil {
		t.Fatal(err)
	}
	if have, _ := certs.BoundUDID(cert.Raw); have != "" {
		t.Fatalf("identity took the CSR's bound udid %q", have)
	}
}
