// Package certstest provides certificates and keys for tests of packages
// that use certs: a ready Authority, device identities, and MDM push
// certificates. Nothing here is for production use.
package certstest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/certs"
	"software.sslmate.com/src/go-pkcs12"
)

var oidUID = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}

// NewPushCert returns a self-signed MDM push certificate whose subject UID
// is topic, and its private key (ECDSA P-256, PKCS #8), both PEM. It panics
// if the crypto library fails.
func NewPushCert(topic string, notBefore, notAfter time.Time) (certPEM, keyPEM []byte) {
	cert, key := newPushCert(topic, notBefore, notAfter)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		panic(fmt.Sprintf("certstest: marshal key: %v", err))
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// NewPushCertPKCS12 is NewPushCert as a PKCS #12 file protected by
// password.
func NewPushCertPKCS12(topic string, notBefore, notAfter time.Time, password string) []byte {
	cert, key := newPushCert(topic, notBefore, notAfter)
	p12, err := pkcs12.Modern.Encode(key, cert, nil, password)
	if err != nil {
		panic(fmt.Sprintf("certstest: encode PKCS #12: %v", err))
	}
	return p12
}

func newPushCert(topic string, notBefore, notAfter time.Time) (*x509.Certificate, *ecdsa.PrivateKey) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(fmt.Sprintf("certstest: generate key: %v", err))
	}
	subject := pkix.Name{CommonName: "APSP:" + topic, Country: []string{"US"}}
	if topic != "" {
		subject.ExtraNames = []pkix.AttributeTypeAndValue{{Type: oidUID, Value: topic}}
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               subject,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(fmt.Sprintf("certstest: create certificate: %v", err))
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		panic(fmt.Sprintf("certstest: parse certificate: %v", err))
	}
	return cert, key
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(fmt.Sprintf("certstest: serial: %v", err))
	}
	return n.Add(n, big.NewInt(1))
}

// authorityFiles caches the files of generated authorities, so a test
// binary generates RSA keys once rather than per test.
var authorityFiles struct {
	sync.Mutex
	sets []authoritySet
}

type authoritySet struct {
	notBefore, notAfter time.Time
	files               map[string][]byte
}

var authorityFileNames = []string{
	certs.CACertFile, certs.CAKeyFile,
	certs.RACertFile, certs.RAKeyFile,
	certs.SignerCertFile, certs.SignerKeyFile,
	certs.PolicySinceFile,
}

// NewAuthority returns an Authority valid at now, stored in a fresh
// tb.TempDir(). Key material is generated once per test binary and shared
// (for any now within the first nine years of a generated CA), so calls
// are cheap; each Authority has its own verification cache.
func NewAuthority(tb testing.TB, now time.Time, opts ...certs.Option) *certs.Authority {
	tb.Helper()
	files, err := authorityFilesFor(now)
	if err != nil {
		tb.Fatalf("certstest: %v", err)
	}
	dir := tb.TempDir()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			tb.Fatalf("certstest: %v", err)
		}
	}
	a, err := certs.LoadOrCreate(dir, now, opts...)
	if err != nil {
		tb.Fatalf("certstest: load authority: %v", err)
	}
	return a
}

func authorityFilesFor(now time.Time) (map[string][]byte, error) {
	authorityFiles.Lock()
	defer authorityFiles.Unlock()
	for _, s := range authorityFiles.sets {
		if !now.Before(s.notBefore) && now.Before(s.notAfter) {
			return s.files, nil
		}
	}
	dir, err := os.MkdirTemp("", "certstest-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	a, err := certs.LoadOrCreate(dir, now)
	if err != nil {
		return nil, fmt.Errorf("create authority: %w", err)
	}
	files := make(map[string][]byte, len(authorityFileNames))
	for _, name := range authorityFileNames {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		files[name] = b
	}
	ca := a.CA()
	authorityFiles.sets = append(authorityFiles.sets, authoritySet{
		notBefore: ca.NotBefore,
		notAfter:  ca.NotAfter.AddDate(-1, 0, 0),
		files:     files,
	})
	return files, nil
}

// NewIdentity issues a device identity from a for a fresh ECDSA P-256 key
// with the given subject common name, as SCEP enrollment would, and returns
// the certificate and key.
func NewIdentity(tb testing.TB, a *certs.Authority, commonName string, now time.Time) (*x509.Certificate, crypto.Signer) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("certstest: generate key: %v", err)
	}
	return issueFor(tb, a, key, commonName, now), key
}

func issueFor(tb testing.TB, a *certs.Authority, key crypto.Signer, commonName string, now time.Time) *x509.Certificate {
	tb.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: commonName},
	}, key)
	if err != nil {
		tb.Fatalf("certstest: create CSR: %v", err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		tb.Fatalf("certstest: parse CSR: %v", err)
	}
	cert, err := a.IssueIdentity(csr, now)
	if err != nil {
		tb.Fatalf("certstest: issue identity: %v", err)
	}
	return cert
}

// SignRequest returns the Mdm-Signature header value a device with this
// identity would send with body.
func SignRequest(tb testing.TB, body []byte, cert *x509.Certificate, key crypto.Signer) string {
	tb.Helper()
	h, err := certs.SignMdmSignature(body, cert, key)
	if err != nil {
		tb.Fatalf("certstest: sign request: %v", err)
	}
	return h
}
