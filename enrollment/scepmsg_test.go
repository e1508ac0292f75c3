package enrollment

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/http"
	"strings"
	"testing"

	"github.com/smallstep/pkcs7"
)

// indefinite re-encodes a DER message's outer SEQUENCE with BER's
// indefinite length, as some SCEP clients send it.
func indefinite(tb testing.TB, der []byte) []byte {
	tb.Helper()
	if len(der) < 4 || der[0] != 0x30 || der[1] != 0x82 {
		tb.Fatalf("unexpected DER header % x", der[:4])
	}
	out := append([]byte{0x30, 0x80}, der[4:]...)
	return append(out, 0x00, 0x00)
}

// oversizedSigner returns a device whose signing certificate, issued by
// d's own, carries an RSA key one bit over MaxRSAKeyBits. Nobody holds
// that key: the message is still signed with d's key, and must be refused
// before anything tries to verify it.
func oversizedSigner(tb testing.TB, d *scepDevice) *scepDevice {
	tb.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), MaxRSAKeyBits))
	if err != nil {
		tb.Fatal(err)
	}
	n.SetBit(n, MaxRSAKeyBits, 1).SetBit(n, 0, 1)
	nb, na := certValidity()
	tmpl := &x509.Certificate{
		SerialNumber: serial(tb),
		Subject:      pkix.Name{CommonName: "SCEP SIGNER"},
		NotBefore:    nb,
		NotAfter:     na,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, d.cert, &rsa.PublicKey{N: n, E: 65537}, d.key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return &scepDevice{key: d.key, cert: cert}
}

// sameKeys reports whether keys are the public keys of certs, in order.
func sameKeys(keys []crypto.PublicKey, certs []*x509.Certificate) bool {
	if len(keys) != len(certs) {
		return false
	}
	for i, k := range keys {
		eq, ok := k.(interface{ Equal(crypto.PublicKey) bool })
		if !ok || !eq.Equal(certs[i].PublicKey) {
			return false
		}
	}
	return true
}

// keysCover reports whether every certificate's key is among keys.
func keysCover(keys []crypto.PublicKey, certs []*x509.Certificate) bool {
	for _, c := range certs {
		found := false
		for _, k := range keys {
			if eq, ok := k.(interface{ Equal(crypto.PublicKey) bool }); ok && eq.Equal(c.PublicKey) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// TestMessageKeys: a DER request is read in place and yields the keys of
// the certificates pkcs7.Parse yields; BER and garbage are left to pkcs7.Parse; an
// oversized signer key is refused on both paths.
func TestMessageKeys(t *testing.T) {
	pki := newECDSAPKI(t)
	device := newSCEPDevice(t, testRSAKey(t, 1))
	msg := device.request(t, []*x509.Certificate{pki.ra}, device.csr(t, "c"))

	keys, ok := messageKeys(msg)
	if !ok {
		t.Fatal("a DER PKCSReq was not read in place")
	}
	p7, err := pkcs7.Parse(msg)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) == 0 || !sameKeys(keys, p7.Certificates) {
		t.Errorf("read %d keys, pkcs7.Parse %d certificates, or they differ", len(keys), len(p7.Certificates))
	}
	if err := checkMessageKeys(msg); err != nil {
		t.Errorf("checkMessageKeys(valid) = %v", err)
	}

	ber := indefinite(t, msg)
	if _, ok := messageKeys(ber); ok {
		t.Error("a BER message was read in place")
	}
	if err := checkMessageKeys(ber); err != nil {
		t.Errorf("checkMessageKeys(BER) = %v, want it accepted through pkcs7.Parse", err)
	}
	for _, bad := range [][]byte{nil, []byte("hello"), msg[:len(msg)/2]} {
		if _, ok := messageKeys(bad); ok {
			t.Errorf("messageKeys(%.8x…) read garbage", bad)
		}
		if err := checkMessageKeys(bad); err == nil {
			t.Errorf("checkMessageKeys(%.8x…) accepted garbage", bad)
		}
	}

	signer := oversizedSigner(t, device)
	huge := signer.request(t, []*x509.Certificate{pki.ra}, device.csr(t, "c"))
	want := "signer rsa key of 8193 bits"
	for name, m := range map[string][]byte{"DER": huge, "BER": indefinite(t, huge)} {
		if err := checkMessageKeys(m); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: checkMessageKeys(oversized signer) = %v, want %q", name, err, want)
		}
	}
}

// TestSCEPOversizedSignerKey: over HTTP, a request signed under an
// oversized RSA certificate gets 400 and no identity.
func TestSCEPOversizedSignerKey(t *testing.T) {
	pki := newECDSAPKI(t)
	f := newSCEPFixture(t, pki, mustShared(t, "c"))
	device := newSCEPDevice(t, testRSAKey(t, 1))
	msg := oversizedSigner(t, device).request(t, []*x509.Certificate{pki.ra}, device.csr(t, "c"))
	resp, body := f.post(t, "operation=PKIOperation", msg)
	// Refused for its key, before its signature is checked.
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "signer rsa key of 8193 bits") {
		t.Errorf("status %d, want 400 for the key size: %s", resp.StatusCode, body)
	}
	if n := f.issuer.issued.Load(); n != 0 {
		t.Errorf("issued %d certificates, want none", n)
	}
}

// FuzzMessageKeys: whenever the in-place reader accepts a message that
// pkcs7.Parse also accepts, it has read the key of every certificate
// pkcs7 yields.
func FuzzMessageKeys(f *testing.F) {
	pki := newECDSAPKI(f)
	device := newSCEPDevice(f, testRSAKey(f, 1))
	msg := device.request(f, []*x509.Certificate{pki.ra}, device.csr(f, "c"))
	f.Add(msg)
	f.Add(indefinite(f, msg))
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		if len(der) > MaxSCEPMessageSize {
			return
		}
		keys, ok := messageKeys(der)
		if !ok {
			return
		}
		p7, err := pkcs7.Parse(der)
		if err != nil {
			return // the message is malformed after its certificates: ParsePKIMessage refuses it
		}
		// The size guard must have seen every key pkcs7 will verify with.
		// The reverse need not hold: fuzzing found a message whose
		// certificates pkcs7.Parse drops; a key checked in vain only makes
		// the guard stricter, and without a certificate the signature
		// check that follows fails.
		if !keysCover(keys, p7.Certificates) {
			t.Errorf("in place: %d keys, pkcs7.Parse: %d certificates, some key not among those read in place", len(keys), len(p7.Certificates))
		}
	})
}
