package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"testing"
	"time"
)

// certWithValidity returns the DER of a throwaway certificate.
func certWithValidity(t testing.TB, notBefore, notAfter time.Time) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "d"}, NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func deviceFixture(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/device.pem")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatal("testdata/device.pem: no PEM block")
	}
	return block.Bytes
}

// TestSignerNotAfter: the expiry read in place is crypto/x509's, for
// UTCTime and GeneralizedTime validity, and a Signer whose certificate
// does not read falls back to the parse and its error.
func TestSignerNotAfter(t *testing.T) {
	d := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := map[string][]byte{
		"fixture":          deviceFixture(t),
		"UTCTime":          certWithValidity(t, d, time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC)),
		"GeneralizedTime":  certWithValidity(t, d, time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC)),
		"both Generalized": certWithValidity(t, time.Date(2051, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)),
	}
	for name, der := range cases {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		have, ok := notAfterOf(der)
		if !ok || !have.Equal(cert.NotAfter) {
			t.Errorf("%s: notAfterOf = %s, %v, want %s", name, have, ok, cert.NotAfter)
		}
		s := &Signer{Raw: der}
		if have, err := s.NotAfter(); err != nil || !have.Equal(cert.NotAfter) || s.cert != nil {
			t.Errorf("%s: Signer.NotAfter = %s, %v (parsed %v), want %s without a parse", name, have, err, s.cert != nil, cert.NotAfter)
		}
	}
	if _, err := (&Signer{Raw: []byte{0x30, 0x00}}).NotAfter(); err == nil {
		t.Error("NotAfter of a malformed certificate: no error")
	}
}

// FuzzNotAfterOf: whenever crypto/x509 parses a certificate and the
// in-place read accepts it, both give the same expiry.
func FuzzNotAfterOf(f *testing.F) {
	f.Add(deviceFixture(f))
	f.Add(certWithValidity(f, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2050, 6, 1, 0, 0, 0, 0, time.UTC)))
	f.Fuzz(func(t *testing.T, der []byte) {
		have, ok := notAfterOf(der)
		cert, err := x509.ParseCertificate(der)
		if !ok || err != nil {
			return
		}
		if !have.Equal(cert.NotAfter) {
			t.Fatalf("notAfterOf = %s, crypto/x509 = %s", have, cert.NotAfter)
		}
	})
}
