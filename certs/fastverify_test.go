package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"
)

func testdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func headerDER(t testing.TB, name string) []byte {
	t.Helper()
	der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(testdata(t, name))))
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// selfSigned returns a throwaway ECDSA certificate and key.
func selfSigned(t testing.TB) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42),
		Subject:      pkix.Name{CommonName: "device"},
		NotBefore:    time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// TestFastPathAgreesWithPKCS7 checks which inputs take the fast path and
// that both paths return the same verdict and signer.
func TestFastPathAgreesWithPKCS7(t *testing.T) {
	body := testdata(t, "body.plist")
	tampered := testdata(t, "body.tampered.plist")
	cert, key := selfSigned(t)
	own, err := signCMS(body, cert, key, true)
	if err != nil {
		t.Fatal(err)
	}
	attached, err := signCMS(body, cert, key, false)
	if err != nil {
		t.Fatal(err)
	}
	sha1Own := func() []byte {
		sd, _ := pkcs7.NewSignedData(body)
		sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA1)
		if err := sd.AddSigner(cert, key, pkcs7.SignerInfoConfig{}); err != nil {
			t.Fatal(err)
		}
		sd.Detach()
		der, err := sd.Finish()
		if err != nil {
			t.Fatal(err)
		}
		return der
	}()

	tests := []struct {
		name     string
		der      []byte
		body     []byte
		wantFast bool // the fast path accepts
		wantOK   bool // the signature is valid
	}{
		{"openssl sha1", headerDER(t, "mdm-signature.sha1.b64"), body, true, true},
		{"openssl sha256", headerDER(t, "mdm-signature.sha256.b64"), body, true, true},
		{"openssl other CA", headerDER(t, "mdm-signature.other-ca.sha256.b64"), body, true, true},
		{"openssl BER", headerDER(t, "mdm-signature.ber.sha256.b64"), body, false, true},
		{"own ecdsa sha256", own, body, true, true},
		{"own ecdsa sha1", sha1Own, body, true, true},
		{"attached content", attached, body, false, true},
		{"openssl sha1 tampered", headerDER(t, "mdm-signature.sha1.b64"), tampered, false, false},
		{"openssl sha256 tampered", headerDER(t, "mdm-signature.sha256.b64"), tampered, false, false},
		{"openssl BER tampered", headerDER(t, "mdm-signature.ber.sha256.b64"), tampered, false, false},
		{"own tampered", own, tampered, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fast, fastErr := fastVerifyDetached(tc.der, tc.body)
			if got := fastErr == nil; got != tc.wantFast {
				t.Fatalf("fast path accepted = %v, want %v (%v)", got, tc.wantFast, fastErr)
			}
			if fastErr != nil && !errors.Is(fastErr, errFastPathDeclined) {
				t.Fatalf("fast path error = %v, want errFastPathDeclined", fastErr)
			}
			slow, slowErr := verifyWithPKCS7(tc.der, tc.body)
			if got := slowErr == nil; got != tc.wantOK {
				t.Fatalf("pkcs7 path accepted = %v, want %v (%v)", got, tc.wantOK, slowErr)
			}
			if fast != nil && !bytes.Equal(fast.Raw, slow.Raw) {
				t.Fatal("the paths return different signers")
			}
			if fast != nil && fast.Sum != sha256.Sum256(slow.Raw) {
				t.Fatal("the fast path's Sum is not the certificate's SHA-256")
			}
			h := base64.StdEncoding.EncodeToString(tc.der)
			got, err := VerifyMdmSignature(h, tc.body)
			if (err == nil) != tc.wantOK {
				t.Fatalf("VerifyMdmSignature error = %v, want ok = %v", err, tc.wantOK)
			}
			if tc.wantOK && !got.Equal(slow) {
				t.Fatal("VerifyMdmSignature returned another signer")
			}
		})
	}
}

func TestPositiveSerial(t *testing.T) {
	tests := []struct {
		have []byte
		want *big.Int
	}{
		{[]byte{0x00, 0x80}, big.NewInt(0x80)},
		{[]byte{0x01, 0x02}, big.NewInt(0x0102)},
		{[]byte{0x7f}, big.NewInt(0x7f)},
	}
	for _, tc := range tests {
		if got := positiveSerial(tc.have); !bytes.Equal(got, tc.want.Bytes()) {
			t.Errorf("positiveSerial(%x) = %x, want %x", tc.have, got, tc.want.Bytes())
		}
	}
	for _, have := range [][]byte{{0x80}, {0x00}, {0x00, 0x00}, nil} {
		if got := positiveSerial(have); got != nil {
			t.Errorf("positiveSerial(%x) = %x, want nil (negative, zero or empty)", have, got)
		}
	}
}

// FuzzFastPathAgrees feeds mutated DER signatures to both paths: neither
// may panic, and the fast path must never accept what pkcs7 rejects, nor
// return another signer.
func FuzzFastPathAgrees(f *testing.F) {
	body := testdata(f, "body.plist")
	for _, name := range []string{"mdm-signature.sha1.b64", "mdm-signature.sha256.b64", "mdm-signature.ber.sha256.b64"} {
		f.Add(headerDER(f, name), body)
	}
	f.Fuzz(func(t *testing.T, der, body []byte) {
		fast, fastErr := fastVerifyDetached(der, body)
		if fastErr != nil && !errors.Is(fastErr, errFastPathDeclined) {
			t.Fatalf("fast path error = %v", fastErr)
		}
		slow, slowErr := verifyWithPKCS7(der, body)
		if slowErr != nil && !errors.Is(slowErr, ErrBadSignature) {
			t.Fatalf("pkcs7 path error does not wrap ErrBadSignature: %v", slowErr)
		}
		if fastErr != nil {
			return
		}
		// The fast path reads only the signer certificate's serial,
		// issuer and key; one that does not parse in full is refused
		// later, by Authority.VerifySigner, so it may pass here.
		cert, certErr := fast.Certificate()
		if certErr != nil {
			if slowErr == nil {
				t.Fatalf("pkcs7 accepted a signer certificate x509 cannot parse (%v)", certErr)
			}
			return
		}
		if slowErr != nil {
			t.Fatalf("fast path accepted what pkcs7 rejects: %v", slowErr)
		}
		if !cert.Equal(slow) {
			t.Fatal("different signers")
		}
	})
}

// BenchmarkVerifyPaths compares the fast path with the pkcs7 path on the
// OpenSSL SHA-256 fixture.
func BenchmarkVerifyPaths(b *testing.B) {
	der := headerDER(b, "mdm-signature.sha256.b64")
	body := testdata(b, "body.plist")
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := fastVerifyDetached(der, body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pkcs7", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := verifyWithPKCS7(der, body); err != nil {
				b.Fatal(err)
			}
		}
	})
}
