package certs_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/certs"
	"github.com/sundial-mdm/sundial/certs/certstest"
)

// TestOnlyDeviceIdentitiesVerify: the public RA and profile-signer
// certificates, the server TLS certificate and a CA-signed client
// certificate without the device-identity policy all chain to Sundial's CA,
// and none of them may speak for a device.
func TestOnlyDeviceIdentitiesVerify(t *testing.T) {
	dir := t.TempDir()
	a, err := certs.LoadOrCreate(dir, t0) // fresh RA and signer, with their EKUs
	if err != nil {
		t.Fatal(err)
	}
	ra, _ := a.RA()
	signer, _ := a.ProfileSigner()
	id, _ := certstest.NewIdentity(t, a, "device", t0)

	// A client certificate signed by the same CA key, but not issued as a
	// device identity (no policy), and one with no EKU at all.
	caKey := loadCAKey(t, dir)
	noPolicy := issueRaw(t, a.CA(), caKey, &x509.Certificate{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	noEKU := issueRaw(t, a.CA(), caKey, &x509.Certificate{Policies: []x509.OID{certs.DeviceIdentityPolicy}})
	anyEKU := issueRaw(t, a.CA(), caKey, &x509.Certificate{
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageAny, x509.ExtKeyUsageClientAuth}, Policies: []x509.OID{certs.DeviceIdentityPolicy}})

	if !slices.ContainsFunc(id.Policies, certs.DeviceIdentityPolicy.Equal) {
		t.Fatalf("issued identity lacks the device-identity policy: %v", id.Policies)
	}
	for _, c := range []*x509.Certificate{ra, signer} {
		if len(c.ExtKeyUsage) == 0 && len(c.UnknownExtKeyUsage) == 0 {
			t.Errorf("%s has no extended key usage (x509 takes that as any purpose)", c.Subject.CommonName)
		}
		if slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
			t.Errorf("%s allows client authentication", c.Subject.CommonName)
		}
	}
	tests := []struct {
		name string
		have *x509.Certificate
		ok   bool
	}{
		{"device identity", id, true},
		{"SCEP RA", ra, false},
		{"profile signer", signer, false},
		{"server TLS", newServerLeaf(t, a), false},
		{"client auth without the policy", noPolicy, false},
		{"policy without client auth", noEKU, false},
		{"any-purpose EKU", anyEKU, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for i := range 2 { // the second answer may come from the cache
				err := a.VerifySigner(certs.SignerOf(tc.have), t0)
				if tc.ok && err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
				if !tc.ok && !errors.Is(err, certs.ErrUntrusted) {
					t.Fatalf("call %d: err = %v, want ErrUntrusted", i, err)
				}
			}
		})
	}
}

// TestLegacyRAWithoutEKURefused: an RA certificate made before RA and
// signer certificates had EKUs (none at all) still cannot act as a device.
func TestLegacyRAWithoutEKURefused(t *testing.T) {
	dir := t.TempDir()
	a, err := certs.LoadOrCreate(dir, t0)
	if err != nil {
		t.Fatal(err)
	}
	legacyRA := issueRaw(t, a.CA(), loadCAKey(t, dir), &x509.Certificate{
		Subject:  pkix.Name{CommonName: "Sundial SCEP RA"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	})
	if err := a.VerifyIdentity(legacyRA, t0); !errors.Is(err, certs.ErrUntrusted) {
		t.Fatalf("legacy RA: %v, want ErrUntrusted", err)
	}
}

func loadCAKey(t *testing.T, dir string) *ecdsa.PrivateKey {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, certs.CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatal("CA key is not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		k, err = x509.ParseECPrivateKey(block.Bytes)
	}
	if err != nil {
		t.Fatal(err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		t.Fatalf("CA key is %T", k)
	}
	return ek
}

func issueRaw(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, tmpl *x509.Certificate) *x509.Certificate {
	t.Helper()
	return issueRawAt(t, ca, caKey, t0.Add(-time.Second), tmpl)
}

func issueRawAt(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, notBefore time.Time, tmpl *x509.Certificate) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(7)
	tmpl.NotBefore, tmpl.NotAfter = notBefore, notBefore.AddDate(1, 0, 0)
	if tmpl.Subject.CommonName == "" {
		tmpl.Subject = pkix.Name{CommonName: "not a device"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestLegacyIdentitiesAfterUpgrade: identities Sundial issued before device
// identities carried the policy (client authentication as the only EKU)
// keep working after an upgrade; a certificate without the policy issued
// after it, and the old RA and signer (no EKU), do not.
func TestLegacyIdentitiesAfterUpgrade(t *testing.T) {
	dir := t.TempDir()
	a, err := certs.LoadOrCreate(dir, t0)
	if err != nil {
		t.Fatal(err)
	}
	caKey := loadCAKey(t, dir)
	before := issueRaw(t, a.CA(), caKey, &x509.Certificate{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	legacyRA := issueRaw(t, a.CA(), caKey, &x509.Certificate{KeyUsage: x509.KeyUsageDigitalSignature})
	// The upgrade: the directory had no policy-since record.
	if err := os.Remove(filepath.Join(dir, certs.PolicySinceFile)); err != nil {
		t.Fatal(err)
	}
	upgrade := t0.Add(48 * time.Hour)
	a, err = certs.LoadOrCreate(dir, upgrade)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.VerifyIdentity(before, upgrade); err != nil {
		t.Errorf("identity issued before the upgrade: %v", err)
	}
	if err := a.VerifyIdentity(legacyRA, upgrade); !errors.Is(err, certs.ErrUntrusted) {
		t.Errorf("old RA without EKU: %v, want ErrUntrusted", err)
	}
	late := issueRawAt(t, a.CA(), caKey, upgrade.Add(time.Hour), &x509.Certificate{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err := a.VerifyIdentity(late, upgrade.Add(2*time.Hour)); !errors.Is(err, certs.ErrUntrusted) {
		t.Errorf("client certificate without the policy issued after the upgrade: %v, want ErrUntrusted", err)
	}
	// A restart keeps the recorded time.
	a, err = certs.LoadOrCreate(dir, upgrade.Add(72*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.VerifyIdentity(before, upgrade.Add(72*time.Hour)); err != nil {
		t.Errorf("after a restart: %v", err)
	}
}
