package certs_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
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

// TestSignerBoundUDID: a Signer's bound UDID is BoundUDID of its DER,
// whether VerifySigner answered from its cache (filled at issuance) or
// parsed the certificate, for bound and unbound identities and for a
// parsed certificate.
func TestSignerBoundUDID(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr := newCSR(t, key, pkix.Name{CommonName: "Sundial Identity"})
	const udid = "00008103-001A2B3C4D5E6F7A"
	for _, size := range []int{0, 10} {
		a := certstest.NewAuthority(t, t0, certs.WithVerifyCacheSize(size))
		bound, err := a.IssueBoundIdentity(csr, udid, t0)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := a.IssueIdentity(csr, t0)
		if err != nil {
			t.Fatal(err)
		}
		for name, c := range map[string]struct {
			raw  []byte
			want string
		}{"bound": {bound.Raw, udid}, "plain": {plain.Raw, ""}} {
			s := &certs.Signer{Raw: c.raw, Sum: sha256.Sum256(c.raw)}
			if err := a.VerifySigner(s, t0); err != nil {
				t.Fatalf("cache %d, %s: %v", size, name, err)
			}
			for i := range 2 {
				if have, err := s.BoundUDID(); err != nil || have != c.want {
					t.Errorf("cache %d, %s, call %d: BoundUDID = %q, %v; want %q", size, name, i, have, err, c.want)
				}
			}
			s2 := certs.SignerOf(map[string]*x509.Certificate{"bound": bound, "plain": plain}[name])
			if have, err := s2.BoundUDID(); err != nil || have != c.want {
				t.Errorf("cache %d, %s, SignerOf: BoundUDID = %q, %v; want %q", size, name, have, err, c.want)
			}
		}
	}
}

// BenchmarkBoundUDID: a request's bound UDID for a cached ADE identity,
// from the Signer and from the DER (a parse).
func BenchmarkBoundUDID(b *testing.B) {
	a := certstest.NewAuthority(b, t0)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	cert, err := a.IssueBoundIdentity(newCSR(b, key, pkix.Name{CommonName: "Sundial Identity"}), "00008103-001A2B3C4D5E6F7A", t0)
	if err != nil {
		b.Fatal(err)
	}
	for name, bound := range map[string]func(*certs.Signer) (string, error){
		"signer": (*certs.Signer).BoundUDID,
		"der":    func(s *certs.Signer) (string, error) { return certs.BoundUDID(s.Raw) },
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s := &certs.Signer{Raw: cert.Raw, Sum: sha256.Sum256(cert.Raw)}
				if err := a.VerifySigner(s, t0); err != nil {
					b.Fatal(err)
				}
				if u, err := bound(s); err != nil || u == "" {
					b.Fatal(u, err)
				}
			}
		})
	}
}
