package certs_test

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"
	"github.com/sundial-mdm/sundial/certs"
	"github.com/sundial-mdm/sundial/certs/certstest"
)

func readHeader(t testing.TB, name string) string {
	t.Helper()
	return strings.TrimSpace(string(readTestdata(t, name)))
}

func readTestKey(t testing.TB, name string) crypto.Signer {
	t.Helper()
	block, _ := pem.Decode(readTestdata(t, name))
	if block == nil {
		t.Fatalf("%s: no PEM", name)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	}
	if err != nil {
		t.Fatal(err)
	}
	return k.(crypto.Signer)
}

// TestVerifyMdmSignatureFixtures uses headers made by OpenSSL.
func TestVerifyMdmSignatureFixtures(t *testing.T) {
	body := readTestdata(t, "body.plist")
	tampered := readTestdata(t, "body.tampered.plist")
	device := readTestCert(t, "device.pem")
	otherDevice := readTestCert(t, "other-device.pem")
	ca := readTestCert(t, "ca.pem")
	otherCA := readTestCert(t, "other-ca.pem")

	tests := []struct {
		name       string
		header     string
		body       []byte
		wantSigner *x509.Certificate // nil: the signature must fail
		trustedBy  *x509.Certificate // the CA the signer chains to
	}{
		{"sha1", "mdm-signature.sha1.b64", body, device, ca},
		{"sha256", "mdm-signature.sha256.b64", body, device, ca},
		{"sha1 tampered body", "mdm-signature.sha1.b64", tampered, nil, nil},
		{"sha256 tampered body", "mdm-signature.sha256.b64", tampered, nil, nil},
		{"other CA", "mdm-signature.other-ca.sha256.b64", body, otherDevice, otherCA},
		{"other CA tampered body", "mdm-signature.other-ca.sha256.b64", tampered, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cert, err := certs.VerifyMdmSignature(readHeader(t, tc.header), tc.body)
			if tc.wantSigner == nil {
				if !errors.Is(err, certs.ErrBadSignature) {
					t.Fatalf("error = %v, want ErrBadSignature", err)
				}
				if cert != nil {
					t.Fatal("got a certificate with the error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !cert.Equal(tc.wantSigner) {
				t.Fatalf("signer = %s, want %s", cert.Subject, tc.wantSigner.Subject)
			}
			// The signature is fine either way; only the chain decides
			// whether Sundial (here: the fixture CA) trusts the signer.
			if err := certs.VerifyChain(cert, poolOf(tc.trustedBy), t0); err != nil {
				t.Errorf("signer does not chain to its own CA: %v", err)
			}
			err = certs.VerifyChain(cert, poolOf(ca), t0)
			if trusted := tc.trustedBy == ca; trusted != (err == nil) {
				t.Errorf("VerifyChain against ca.pem: err = %v, want trusted = %v", err, trusted)
			}
		})
	}
}

func TestVerifyMdmSignatureRoundTrip(t *testing.T) {
	body := readTestdata(t, "body.plist")
	a := certstest.NewAuthority(t, t0)
	ecID, ecKey := certstest.NewIdentity(t, a, "device", t0)

	// An identity valid only far from the wall clock: the signing-time
	// attribute (wall clock) is outside its validity, which must not matter.
	far := t0.AddDate(8, 0, 0)
	farID, farKey := certstest.NewIdentity(t, a, "device", far)

	tests := []struct {
		name string
		cert *x509.Certificate
		key  crypto.Signer
	}{
		{"ECDSA identity from our CA", ecID, ecKey},
		{"RSA fixture device", readTestCert(t, "device.pem"), readTestKey(t, "device.key")},
		{"signing time outside validity", farID, farKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := certs.SignMdmSignature(body, tc.cert, tc.key)
			if err != nil {
				t.Fatal(err)
			}
			got, err := certs.VerifyMdmSignature(h, body)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tc.cert) {
				t.Error("signer is not the signing certificate")
			}
			// The caller's copy of the certificate keeps its real validity.
			if !got.NotAfter.Equal(tc.cert.NotAfter) {
				t.Errorf("returned certificate NotAfter = %s, want %s", got.NotAfter, tc.cert.NotAfter)
			}
			if _, err := certs.VerifyMdmSignature(h, append(bytes.Clone(body), ' ')); !errors.Is(err, certs.ErrBadSignature) {
				t.Errorf("changed body: error = %v, want ErrBadSignature", err)
			}

			der, _ := base64.StdEncoding.DecodeString(h)
			p7, err := pkcs7.Parse(der)
			if err != nil {
				t.Fatal(err)
			}
			if len(p7.Content) != 0 {
				t.Error("signature is not detached")
			}
			if alg := p7.Signers[0].DigestAlgorithm.Algorithm; !alg.Equal(pkcs7.OIDDigestAlgorithmSHA256) {
				t.Errorf("digest algorithm = %s, want SHA-256", alg)
			}
		})
	}

	if _, err := certs.SignMdmSignature(body, ecID, readTestKey(t, "device.key")); err == nil {
		t.Error("signed with a key that does not match the certificate")
	}
	if _, err := certs.SignMdmSignature(body, nil, ecKey); err == nil {
		t.Error("signed without a certificate")
	}
}

func TestVerifyMdmSignatureRejects(t *testing.T) {
	body := readTestdata(t, "body.plist")
	a := certstest.NewAuthority(t, t0)
	id1, key1 := certstest.NewIdentity(t, a, "one", t0)
	id2, key2 := certstest.NewIdentity(t, a, "two", t0)

	b64 := base64.StdEncoding.EncodeToString

	twoSigners := func() string {
		sd, err := pkcs7.NewSignedData(body)
		if err != nil {
			t.Fatal(err)
		}
		sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
		if err := sd.AddSigner(id1, key1, pkcs7.SignerInfoConfig{}); err != nil {
			t.Fatal(err)
		}
		if err := sd.AddSigner(id2, key2, pkcs7.SignerInfoConfig{}); err != nil {
			t.Fatal(err)
		}
		sd.Detach()
		der, err := sd.Finish()
		if err != nil {
			t.Fatal(err)
		}
		return b64(der)
	}()
	noSigner := func() string {
		der, err := pkcs7.DegenerateCertificate(id1.Raw)
		if err != nil {
			t.Fatal(err)
		}
		return b64(der)
	}()
	enveloped := func() string {
		ra, _ := a.RA()
		der, err := pkcs7.Encrypt(body, []*x509.Certificate{ra})
		if err != nil {
			t.Fatal(err)
		}
		return b64(der)
	}()
	dataContent := func() string {
		type contentInfo struct {
			ContentType asn1.ObjectIdentifier
			Content     asn1.RawValue `asn1:"explicit,optional,tag:0"`
		}
		inner, _ := asn1.Marshal(body)
		der, err := asn1.Marshal(contentInfo{ContentType: pkcs7.OIDData, Content: asn1.RawValue{FullBytes: inner}})
		if err != nil {
			t.Fatal(err)
		}
		return b64(der)
	}()
	fixture := readHeader(t, "mdm-signature.sha256.b64")
	fixtureDER, _ := base64.StdEncoding.DecodeString(fixture)

	tests := []struct {
		name   string
		header string
		want   string
	}{
		{"empty", "", "empty header"},
		{"whitespace", "  \t ", "empty header"},
		{"not base64", "this is *not* base64!", "not base64"},
		{"base64 garbage", b64([]byte("hello, world")), "not a CMS structure"},
		{"a certificate, not CMS", b64(id1.Raw), "not a CMS structure"},
		{"data content type", dataContent, "want SignedData"},
		{"enveloped data", enveloped, "want SignedData"},
		{"no signer", noSigner, "no signer"},
		{"two signers", twoSigners, "2 signers, want 1"},
		{"truncated", b64(fixtureDER[:len(fixtureDER)/2]), "BER structure"},
		{"too long", strings.Repeat("A", certs.MaxSignatureHeaderLen+4), "exceeds"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cert, err := certs.VerifyMdmSignature(tc.header, body)
			if !errors.Is(err, certs.ErrBadSignature) {
				t.Fatalf("error = %v, want ErrBadSignature", err)
			}
			wantErr(t, err, tc.want)
			if cert != nil {
				t.Error("got a certificate with the error")
			}
		})
	}
}

func TestSignProfile(t *testing.T) {
	// pkcs7.Verify compares the signing time (wall clock) with the signer's
	// validity, as devices do.
	now := time.Now()
	a := certstest.NewAuthority(t, now)
	signer, key := a.ProfileSigner()
	profile := []byte(`<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>PayloadType</key><string>Configuration</string></dict></plist>`)

	der, err := certs.SignProfile(profile, signer, key)
	if err != nil {
		t.Fatal(err)
	}
	p7, err := pkcs7.Parse(der)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p7.Content, profile) {
		t.Error("profile is not attached")
	}
	if len(p7.Signers) != 1 {
		t.Fatalf("%d signers, want 1", len(p7.Signers))
	}
	if alg := p7.Signers[0].DigestAlgorithm.Algorithm; !alg.Equal(pkcs7.OIDDigestAlgorithmSHA256) {
		t.Errorf("digest algorithm = %s, want SHA-256", alg)
	}
	if got := p7.GetOnlySigner(); got == nil || !got.Equal(signer) {
		t.Error("signer certificate not included")
	}
	if err := p7.Verify(); err != nil {
		t.Errorf("verify: %v", err)
	}

	p7.Content = append(bytes.Clone(profile), ' ')
	if err := p7.Verify(); err == nil {
		t.Error("changed profile verified")
	}

	id, _ := certstest.NewIdentity(t, a, "x", now)
	if _, err := certs.SignProfile(profile, id, key); err == nil {
		t.Error("signed with a key that does not match the certificate")
	}
}

// TestOpenSSLVerifies checks our signatures with an independent
// implementation, when OpenSSL is installed.
func TestOpenSSLVerifies(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	// OpenSSL checks validity against the wall clock.
	now := time.Now()
	a := certstest.NewAuthority(t, now)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	writeFile(t, caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.CA().Raw}))

	profile := []byte("<plist><dict/></plist>\n")
	signer, key := a.ProfileSigner()
	signed, err := certs.SignProfile(profile, signer, key)
	if err != nil {
		t.Fatal(err)
	}
	signedFile := filepath.Join(dir, "profile.der")
	writeFile(t, signedFile, signed)
	var stderr bytes.Buffer
	cmd := exec.Command(openssl, "cms", "-verify", "-binary", "-inform", "DER", "-in", signedFile,
		"-CAfile", caFile, "-purpose", "any")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl rejects the signed profile: %v\n%s", err, stderr.Bytes())
	}
	if !bytes.Equal(out, profile) {
		t.Errorf("openssl extracted %q, want the profile %q", out, profile)
	}

	body := readTestdata(t, "body.plist")
	bodyFile := filepath.Join(dir, "body.plist")
	writeFile(t, bodyFile, body)
	id, idKey := certstest.NewIdentity(t, a, "device", now)
	h, err := certs.SignMdmSignature(body, id, idKey)
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := base64.StdEncoding.DecodeString(h)
	sigFile := filepath.Join(dir, "sig.der")
	writeFile(t, sigFile, sig)
	out, err = exec.Command(openssl, "cms", "-verify", "-binary", "-inform", "DER", "-in", sigFile,
		"-content", bodyFile, "-CAfile", caFile, "-purpose", "any", "-out", os.DevNull).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl rejects the Mdm-Signature: %v\n%s", err, out)
	}
}

func writeFile(t *testing.T, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(name, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func FuzzVerifyMdmSignature(f *testing.F) {
	body := readTestdata(f, "body.plist")
	for _, name := range []string{"mdm-signature.sha1.b64", "mdm-signature.sha256.b64", "mdm-signature.other-ca.sha256.b64"} {
		f.Add(readHeader(f, name), body)
	}
	f.Add("", []byte(nil))
	f.Add("MIAGCSqGSIb3DQEHAqCAMIACAQEx", body)
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		cert, err := certs.VerifyMdmSignature(header, body)
		if err != nil {
			if !errors.Is(err, certs.ErrBadSignature) {
				t.Fatalf("error does not wrap ErrBadSignature: %v", err)
			}
			return
		}
		if cert == nil {
			t.Fatal("no error and no certificate")
		}
		if _, err := certs.VerifyMdmSignature(header, append(bytes.Clone(body), 'x')); err == nil {
			t.Fatal("signature verifies for two different bodies")
		}
	})
}

func BenchmarkVerifyMdmSignature(b *testing.B) {
	body := readTestdata(b, "body.plist")
	a := certstest.NewAuthority(b, t0)
	id, key := certstest.NewIdentity(b, a, "device", t0)
	ecHeader, err := certs.SignMdmSignature(body, id, key)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, header string }{
		{"rsa-sha1", readHeader(b, "mdm-signature.sha1.b64")},
		{"rsa-sha256", readHeader(b, "mdm-signature.sha256.b64")},
		{"ecdsa-sha256", ecHeader},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := certs.VerifyMdmSignature(bc.header, body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSignMdmSignature(b *testing.B) {
	body := readTestdata(b, "body.plist")
	a := certstest.NewAuthority(b, t0)
	id, key := certstest.NewIdentity(b, a, "device", t0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := certs.SignMdmSignature(body, id, key); err != nil {
			b.Fatal(err)
		}
	}
}
