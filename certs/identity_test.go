package certs_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/certs"
	"github.com/sundial-mdm/sundial/certs/certstest"
)

// Keys are generated once: RSA generation is slow.
var (
	rsaKeyOnce sync.Once
	rsaKey2048 *rsa.PrivateKey
	rsaKey1024 *rsa.PrivateKey
)

func rsaKeys(t testing.TB) (*rsa.PrivateKey, *rsa.PrivateKey) {
	t.Helper()
	rsaKeyOnce.Do(func() {
		var err error
		if rsaKey2048, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		// Go refuses to generate keys under 1024 bits; 1024 is still too
		// small for an identity.
		if rsaKey1024, err = rsa.GenerateKey(rand.Reader, 1024); err != nil {
			panic(err)
		}
	})
	return rsaKey2048, rsaKey1024
}

func newCSR(t testing.TB, key crypto.Signer, subject pkix.Name) *x509.CertificateRequest {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:  subject,
		DNSNames: []string{"requested.example.com"}, // must be ignored
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

var oidUID = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}

func TestIssueIdentity(t *testing.T) {
	a := certstest.NewAuthority(t, t0)
	rsa2048, rsa1024 := rsaKeys(t)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	subject := pkix.Name{
		CommonName:   "com.example.mdm.scep",
		Organization: []string{"Example"},
		ExtraNames:   []pkix.AttributeTypeAndValue{{Type: oidUID, Value: "device-42"}},
	}

	tamperedCSR := newCSR(t, p256, subject)
	tamperedCSR.Signature = bytes.Clone(tamperedCSR.Signature)
	tamperedCSR.Signature[len(tamperedCSR.Signature)-3] ^= 0xff

	tests := []struct {
		name string
		have *x509.CertificateRequest
		want string
	}{
		{"RSA 2048", newCSR(t, rsa2048, subject), ""},
		{"ECDSA P-256", newCSR(t, p256, subject), ""},
		{"RSA 1024", newCSR(t, rsa1024, subject), "RSA key of 1024 bits"},
		{"ECDSA P-224", newCSR(t, p224, subject), "unsupported ECDSA curve"},
		{"Ed25519", newCSR(t, ed, subject), "unsupported public key type"},
		{"bad CSR signature", tamperedCSR, "signature"},
		{"nil", nil, "nil certificate request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cert, err := a.IssueIdentity(tc.have, t0)
			wantErr(t, err, tc.want)
			if tc.want != "" {
				return
			}
			if !bytes.Equal(cert.RawSubject, tc.have.RawSubject) {
				t.Errorf("subject = %s, want the CSR's %s", cert.Subject, tc.have.Subject)
			}
			if len(cert.DNSNames) != 0 {
				t.Errorf("CSR SANs were copied: %v", cert.DNSNames)
			}
			if cert.SerialNumber.Sign() <= 0 || cert.SerialNumber.BitLen() > 128 {
				t.Errorf("serial %x is not a positive 128-bit number", cert.SerialNumber)
			}
			wantKU := x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
			if cert.KeyUsage != wantKU {
				t.Errorf("key usage = %b, want %b", cert.KeyUsage, wantKU)
			}
			if len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
				t.Errorf("ext key usage = %v, want client auth", cert.ExtKeyUsage)
			}
			if cert.IsCA {
				t.Error("identity is a CA")
			}
			if cert.SignatureAlgorithm != x509.ECDSAWithSHA256 {
				t.Errorf("signature algorithm = %s, want ECDSA-SHA256", cert.SignatureAlgorithm)
			}
			if cert.NotBefore.After(t0) {
				t.Errorf("NotBefore %s is after now", cert.NotBefore)
			}
			if got, want := cert.NotAfter, t0.Add(365*24*time.Hour); !got.Equal(want) {
				t.Errorf("NotAfter = %s, want %s", got, want)
			}
			if err := cert.CheckSignatureFrom(a.CA()); err != nil {
				t.Errorf("not signed by the CA: %v", err)
			}
			if err := a.VerifyIdentity(cert, t0); err != nil {
				t.Errorf("VerifyIdentity: %v", err)
			}
		})
	}
}

func TestIssueIdentitySerialsDiffer(t *testing.T) {
	a := certstest.NewAuthority(t, t0)
	seen := map[string]bool{}
	for range 20 {
		cert, _ := certstest.NewIdentity(t, a, "same CN", t0)
		s := cert.SerialNumber.String()
		if seen[s] {
			t.Fatalf("serial %s issued twice", s)
		}
		seen[s] = true
	}
}

func TestIssueIdentityValidity(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr := newCSR(t, p256, pkix.Name{CommonName: "d"})

	a := certstest.NewAuthority(t, t0, certs.WithIdentityValidity(30*24*time.Hour))
	cert, err := a.IssueIdentity(csr, t0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cert.NotAfter, t0.Add(30*24*time.Hour); !got.Equal(want) {
		t.Errorf("NotAfter = %s, want %s", got, want)
	}

	// Near the end of the CA, the identity ends with the CA.
	late := a.CA().NotAfter.Add(-24 * time.Hour)
	cert, err = a.IssueIdentity(csr, late)
	if err != nil {
		t.Fatal(err)
	}
	if !cert.NotAfter.Equal(a.CA().NotAfter) {
		t.Errorf("NotAfter = %s, want the CA's %s", cert.NotAfter, a.CA().NotAfter)
	}

	// After the CA expired, nothing is issued.
	if _, err := a.IssueIdentity(csr, a.CA().NotAfter.Add(time.Second)); err == nil {
		t.Error("issued an identity after the CA expired")
	}
}

func TestVerifyIdentity(t *testing.T) {
	a := certstest.NewAuthority(t, t0)
	other, err := certs.LoadOrCreate(copyBase(t), t0) // a different CA
	if err != nil {
		t.Fatal(err)
	}
	id, _ := certstest.NewIdentity(t, a, "device", t0)
	foreign, _ := certstest.NewIdentity(t, other, "device", t0)
	serverOnly := newServerLeaf(t, a)

	tests := []struct {
		name string
		have *x509.Certificate
		now  time.Time
		ok   bool
	}{
		{"own identity", id, t0, true},
		{"own identity, later", id, t0.AddDate(0, 11, 0), true},
		{"expired", id, id.NotAfter.Add(time.Second), false},
		{"not yet valid", id, id.NotBefore.Add(-time.Second), false},
		{"other CA", foreign, t0, false},
		{"server-auth only", serverOnly, t0, false},
		{"CA certificate itself", a.CA(), t0, false},
		{"nil", nil, t0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Twice: the second call may be answered from the cache and
			// must agree.
			for i := range 2 {
				err := a.VerifyIdentity(tc.have, tc.now)
				if tc.ok && err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
				if !tc.ok && !errors.Is(err, certs.ErrUntrusted) {
					t.Fatalf("call %d: error = %v, want ErrUntrusted", i, err)
				}
			}
		})
	}
}

// TestVerifyIdentityCacheRespectsTime checks a cached success does not
// outlive the certificate.
func TestVerifyIdentityCacheRespectsTime(t *testing.T) {
	for _, size := range []int{0, 1, 200_000} {
		a := certstest.NewAuthority(t, t0, certs.WithVerifyCacheSize(size))
		id, _ := certstest.NewIdentity(t, a, "device", t0)
		other, _ := certstest.NewIdentity(t, a, "device 2", t0)
		if err := a.VerifyIdentity(id, t0); err != nil {
			t.Fatal(err)
		}
		if err := a.VerifyIdentity(other, t0); err != nil { // evicts id when size is 1
			t.Fatal(err)
		}
		if err := a.VerifyIdentity(id, t0); err != nil {
			t.Fatalf("size %d: after eviction: %v", size, err)
		}
		if err := a.VerifyIdentity(id, id.NotAfter.Add(time.Minute)); !errors.Is(err, certs.ErrUntrusted) {
			t.Fatalf("size %d: cached identity accepted after expiry: %v", size, err)
		}
		if err := a.VerifyIdentity(id, id.NotBefore.Add(-time.Minute)); !errors.Is(err, certs.ErrUntrusted) {
			t.Fatalf("size %d: cached identity accepted before NotBefore: %v", size, err)
		}
		if err := a.VerifyIdentity(id, t0); err != nil {
			t.Fatalf("size %d: valid again at t0: %v", size, err)
		}
	}
}

func TestVerifyIdentityConcurrent(t *testing.T) {
	a := certstest.NewAuthority(t, t0, certs.WithVerifyCacheSize(3))
	var ids []*x509.Certificate
	for range 6 {
		id, _ := certstest.NewIdentity(t, a, "device", t0)
		ids = append(ids, id)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4*len(ids))
	for w := range 4 {
		wg.Go(func() {
			for i := range 50 {
				if err := a.VerifyIdentity(ids[(i+w)%len(ids)], t0); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestVerifyChainFixtures uses the OpenSSL-made test CAs.
func TestVerifyChainFixtures(t *testing.T) {
	ca := readTestCert(t, "ca.pem")
	otherCA := readTestCert(t, "other-ca.pem")
	device := readTestCert(t, "device.pem")
	otherDevice := readTestCert(t, "other-device.pem")

	tests := []struct {
		name  string
		cert  *x509.Certificate
		roots *x509.CertPool
		now   time.Time
		ok    bool
	}{
		{"device chains to its CA", device, poolOf(ca), t0, true},
		{"other device refused by our CA", otherDevice, poolOf(ca), t0, false},
		{"other device chains to its own CA", otherDevice, poolOf(otherCA), t0, true},
		{"device refused by the other CA", device, poolOf(otherCA), t0, false},
		{"device expired", device, poolOf(ca), device.NotAfter.Add(time.Hour), false},
		{"nil roots", device, nil, t0, false},
		{"zero time", device, poolOf(ca), time.Time{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := certs.VerifyChain(tc.cert, tc.roots, tc.now)
			if tc.ok && err != nil {
				t.Fatal(err)
			}
			if !tc.ok && !errors.Is(err, certs.ErrUntrusted) {
				t.Fatalf("error = %v, want ErrUntrusted", err)
			}
		})
	}
}

func TestHashCert(t *testing.T) {
	raw := readTestdata(t, "device.pem")
	block, _ := pem.Decode(raw)
	sum := sha256.Sum256(block.Bytes)
	device := readTestCert(t, "device.pem")
	other := readTestCert(t, "other-device.pem")

	if got, want := certs.HashCert(device), hex.EncodeToString(sum[:]); got != want {
		t.Errorf("HashCert = %s, want %s", got, want)
	}
	if certs.HashCert(device) == certs.HashCert(other) {
		t.Error("different certificates hash the same")
	}
	if got := certs.HashCert(nil); got != "" {
		t.Errorf("HashCert(nil) = %q, want empty", got)
	}
}

// newServerLeaf issues a server-auth-only certificate from a, through the
// server TLS path.
func newServerLeaf(t testing.TB, a *certs.Authority) *x509.Certificate {
	t.Helper()
	tc, err := certs.LoadOrCreateServerTLS(t.TempDir(), []string{"mdm.example.com"}, a, t0)
	if err != nil {
		t.Fatal(err)
	}
	return tc.Leaf
}

func BenchmarkVerifyIdentity(b *testing.B) {
	for _, bc := range []struct {
		name string
		size int
	}{
		{"cached", 200_000},
		{"uncached", 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			a := certstest.NewAuthority(b, t0, certs.WithVerifyCacheSize(bc.size))
			id, _ := certstest.NewIdentity(b, a, "device", t0)
			if err := a.VerifyIdentity(id, t0); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := a.VerifyIdentity(id, t0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkIssueIdentity(b *testing.B) {
	a := certstest.NewAuthority(b, t0)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr := newCSR(b, key, pkix.Name{CommonName: "device"})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.IssueIdentity(csr, t0); err != nil {
			b.Fatal(err)
		}
	}
}

// TestVerifySigner: a Signer is verified as its certificate is, and a
// certificate verified before is accepted by its SHA-256 without being
// parsed again (the fast path of every device request).
func TestVerifySigner(t *testing.T) {
	// Issued by another Authority on the same CA (same files), so that a
	// has not remembered it at issuance.
	a := certstest.NewAuthority(t, t0)
	id, _ := certstest.NewIdentity(t, certstest.NewAuthority(t, t0), "device", t0)
	now := t0
	if err := a.VerifySigner(nil, now); !errors.Is(err, certs.ErrUntrusted) {
		t.Fatalf("nil signer: %v, want ErrUntrusted", err)
	}
	// Not cached: the DER is parsed, and garbage is refused.
	junk := &certs.Signer{Raw: []byte("not a certificate"), Sum: sha256.Sum256(id.Raw)}
	if err := a.VerifySigner(junk, now); !errors.Is(err, certs.ErrUntrusted) {
		t.Fatalf("unparsable signer before caching: %v, want ErrUntrusted", err)
	}
	s := certs.SignerOf(id)
	if err := a.VerifySigner(s, now); err != nil {
		t.Fatalf("VerifySigner: %v", err)
	}
	if got, want := s.Hash(), certs.HashCert(id); got != want {
		t.Errorf("Hash = %s, want HashCert %s", got, want)
	}
	// Cached: accepted by its SHA-256 alone (junk carries id's sum, so
	// parsing it would fail), and only while the certificate is valid.
	if err := a.VerifySigner(junk, now); err != nil {
		t.Fatalf("cached signer was parsed again: %v", err)
	}
	if err := a.VerifySigner(junk, id.NotAfter.Add(time.Minute)); !errors.Is(err, certs.ErrUntrusted) {
		t.Fatalf("cached signer after expiry: %v, want ErrUntrusted", err)
	}
	// A certificate from another CA is refused.
	otherCA, err := certs.LoadOrCreate(copyBase(t), t0)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := certstest.NewIdentity(t, otherCA, "device", t0)
	if err := a.VerifySigner(certs.SignerOf(other), now); !errors.Is(err, certs.ErrUntrusted) {
		t.Fatalf("other CA: %v, want ErrUntrusted", err)
	}
}

// TestIssuedIdentityIsRemembered: a certificate the CA has just issued is
// trusted by its SHA-256 alone (the device's first request does not verify
// its chain again), but only while it is valid, and not when the cache is
// off.
func TestIssuedIdentityIsRemembered(t *testing.T) {
	rsa2048, _ := rsaKeys(t)
	for _, size := range []int{0, 200_000} {
		a := certstest.NewAuthority(t, t0, certs.WithVerifyCacheSize(size))
		cert, err := a.IssueIdentity(newCSR(t, rsa2048, pkix.Name{CommonName: "device"}), t0)
		if err != nil {
			t.Fatal(err)
		}
		// Not a certificate: only a remembered hash can make this pass.
		byHash := &certs.Signer{Raw: []byte("not a certificate"), Sum: sha256.Sum256(cert.Raw)}
		err = a.VerifySigner(byHash, t0.Add(time.Hour))
		if size == 0 {
			if !errors.Is(err, certs.ErrUntrusted) {
				t.Errorf("cache off: VerifySigner = %v, want ErrUntrusted", err)
			}
			continue
		}
		if err != nil {
			t.Errorf("issued identity not remembered: %v", err)
		}
		if err := a.VerifySigner(byHash, cert.NotAfter.Add(time.Minute)); !errors.Is(err, certs.ErrUntrusted) {
			t.Errorf("remembered identity accepted after expiry: %v", err)
		}
	}
}

// TestCheckedIdentity: CheckCSR refuses what IssueIdentity refuses, and an
// identity issued from a checked request is the one IssueIdentity would
// issue, taken from the request as it was checked.
func TestCheckedIdentity(t *testing.T) {
	a := certstest.NewAuthority(t, t0)
	rsa2048, rsa1024 := rsaKeys(t)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tampered := newCSR(t, p256, pkix.Name{CommonName: "d"})
	tampered.Signature = bytes.Clone(tampered.Signature)
	tampered.Signature[len(tampered.Signature)-3] ^= 0xff
	for _, bad := range []*x509.CertificateRequest{nil, tampered, newCSR(t, rsa1024, pkix.Name{CommonName: "d"})} {
		_, checkErr := certs.CheckCSR(bad)
		_, issueErr := a.IssueIdentity(bad, t0)
		if checkErr == nil || issueErr == nil {
			t.Errorf("CheckCSR = %v, IssueIdentity = %v, want both to refuse", checkErr, issueErr)
		}
	}

	csr := newCSR(t, rsa2048, pkix.Name{CommonName: "device", Organization: []string{"Example"}})
	checked, err := certs.CheckCSR(csr)
	if err != nil {
		t.Fatal(err)
	}
	if checked.Request() != csr {
		t.Error("Request() is not the checked request")
	}
	want, err := a.IssueIdentity(csr, t0)
	if err != nil {
		t.Fatal(err)
	}
	// Changing the request after the check changes nothing issued.
	csr.RawSubject = []byte("changed")
	csr.PublicKey = &p256.PublicKey
	have, err := a.IssueCheckedIdentity(checked, t0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have.RawSubject, want.RawSubject) || !bytes.Equal(have.RawSubjectPublicKeyInfo, want.RawSubjectPublicKeyInfo) {
		t.Errorf("checked identity has subject %s and another key than %s", have.Subject, want.Subject)
	}
	if !slices.Equal(have.ExtKeyUsage, want.ExtKeyUsage) || have.KeyUsage != want.KeyUsage ||
		!have.NotAfter.Equal(want.NotAfter) || len(have.Policies) != 1 || !have.Policies[0].Equal(certs.DeviceIdentityPolicy) {
		t.Errorf("checked identity differs from IssueIdentity's: %v %v %v", have.ExtKeyUsage, have.NotAfter, have.Policies)
	}
	if err := a.VerifyIdentity(have, t0); err != nil {
		t.Errorf("VerifyIdentity: %v", err)
	}
	bound, err := a.IssueCheckedBoundIdentity(checked, "00008103-001A2B3C4D5E6F7A", t0)
	if err != nil {
		t.Fatal(err)
	}
	if certs.BoundUDIDOf(bound) != "00008103-001A2B3C4D5E6F7A" {
		t.Errorf("bound identity names %q", certs.BoundUDIDOf(bound))
	}
}

// BenchmarkSCEPIssuance measures what issuance costs the SCEP handler for
// an RSA 2048 request: checking the request, then issuing from the checked
// request (the handler's path) or from the raw one, which checks it again.
func BenchmarkSCEPIssuance(b *testing.B) {
	a := certstest.NewAuthority(b, t0)
	key, _ := rsaKeys(b)
	csr := newCSR(b, key, pkix.Name{CommonName: "device"})
	b.Run("checked", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			checked, err := certs.CheckCSR(csr)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := a.IssueCheckedIdentity(checked, t0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("checked-twice", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := certs.CheckCSR(csr); err != nil {
				b.Fatal(err)
			}
			if _, err := a.IssueIdentity(csr, t0); err != nil {
				b.Fatal(err)
			}
		}
	})
}
