package enrollment

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"
	"github.com/smallstep/scep"
	"github.com/smallstep/scep/x509util"

	"github.com/sundial-mdm/sundial/certs"
)

// fixedClock is a Clock that always says t.
type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// RSA key generation is slow, so the tests share a few keys.
var (
	rsaKeysOnce sync.Once
	rsaKeys     [3]*rsa.PrivateKey
)

// testRSAKey returns shared 2048-bit RSA key number i (0 to 2).
func testRSAKey(tb testing.TB, i int) *rsa.PrivateKey {
	tb.Helper()
	rsaKeysOnce.Do(func() {
		var wg sync.WaitGroup
		for n := range rsaKeys {
			wg.Go(func() {
				k, err := rsa.GenerateKey(rand.Reader, 2048)
				if err != nil {
					panic(err)
				}
				rsaKeys[n] = k
			})
		}
		wg.Wait()
	})
	return rsaKeys[i]
}

// testPKI is a CA, an RA signed by it and an issuer over the CA.
type testPKI struct {
	ca    *x509.Certificate
	caKey crypto.Signer
	ra    *x509.Certificate
	raKey *rsa.PrivateKey
}

// certValidity returns the validity window for test certificates. pkcs7 checks
// the signing time (the wall clock) against it and the tests verify chains at
// testNow, so it spans both.
func certValidity() (time.Time, time.Time) {
	return time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
}

func serial(tb testing.TB) *big.Int {
	tb.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

func selfSignedCA(tb testing.TB, key crypto.Signer, cn string) *x509.Certificate {
	tb.Helper()
	nb, na := certValidity()
	usage := x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	if _, ok := key.Public().(*rsa.PublicKey); ok {
		usage |= x509.KeyUsageKeyEncipherment // an RSA CA may be its own RA
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(tb),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Sundial test"}},
		NotBefore:             nb,
		NotAfter:              na,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              usage,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return cert
}

// newECDSAPKI builds an ECDSA P-256 CA and an RSA RA it signed.
func newECDSAPKI(tb testing.TB) *testPKI {
	tb.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	ca := selfSignedCA(tb, caKey, "Sundial test CA")
	raKey := testRSAKey(tb, 0)
	nb, na := certValidity()
	tmpl := &x509.Certificate{
		SerialNumber: serial(tb),
		Subject:      pkix.Name{CommonName: "Sundial test SCEP RA"},
		NotBefore:    nb,
		NotAfter:     na,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, raKey.Public(), caKey)
	if err != nil {
		tb.Fatal(err)
	}
	ra, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return &testPKI{ca: ca, caKey: caKey, ra: ra, raKey: raKey}
}

// newRSAPKIWithRA builds an RSA CA and a separate RSA RA it signed.
func newRSAPKIWithRA(tb testing.TB) *testPKI {
	tb.Helper()
	caKey := testRSAKey(tb, 2)
	ca := selfSignedCA(tb, caKey, "Sundial test RSA CA with RA")
	raKey := testRSAKey(tb, 0)
	nb, na := certValidity()
	tmpl := &x509.Certificate{
		SerialNumber: serial(tb),
		Subject:      pkix.Name{CommonName: "Sundial test SCEP RA"},
		NotBefore:    nb,
		NotAfter:     na,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, raKey.Public(), caKey)
	if err != nil {
		tb.Fatal(err)
	}
	ra, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return &testPKI{ca: ca, caKey: caKey, ra: ra, raKey: raKey}
}

// newRSAPKI builds an RSA CA that is its own RA.
func newRSAPKI(tb testing.TB) *testPKI {
	tb.Helper()
	key := testRSAKey(tb, 0)
	ca := selfSignedCA(tb, key, "Sundial test RSA CA")
	return &testPKI{ca: ca, caKey: key, ra: ca, raKey: key}
}

// countingIssuer issues real certificates from the test CA and counts them.
type countingIssuer struct {
	pki    *testPKI
	issued atomic.Int64
}

func (i *countingIssuer) IssueCheckedIdentity(checked *certs.CheckedCSR, now time.Time) (*x509.Certificate, error) {
	csr := checked.Request()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(i.issued.Load() + 1000),
		Subject:      csr.Subject,
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, i.pki.ca, csr.PublicKey, i.pki.caKey)
	if err != nil {
		return nil, err
	}
	i.issued.Add(1)
	return x509.ParseCertificate(der)
}

// scepDevice plays the Mac's side of SCEP with smallstep/scep's client functions.
type scepDevice struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate // self-signed, signs the request
}

func newSCEPDevice(tb testing.TB, key *rsa.PrivateKey) *scepDevice {
	tb.Helper()
	nb, na := certValidity()
	tmpl := &x509.Certificate{
		SerialNumber: serial(tb),
		Subject:      pkix.Name{CommonName: "SCEP SIGNER", Organization: []string{"Sundial"}},
		NotBefore:    nb,
		NotAfter:     na,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return &scepDevice{key: key, cert: cert}
}

// csr returns a DER CSR with the challenge password, signed by the device key.
func (d *scepDevice) csr(tb testing.TB, challenge string) []byte {
	tb.Helper()
	return makeCSR(tb, d.key, challenge)
}

// makeCSR returns a DER CSR for key with the challenge password.
func makeCSR(tb testing.TB, key crypto.Signer, challenge string) []byte {
	tb.Helper()
	tmpl := &x509util.CertificateRequest{
		CertificateRequest: x509.CertificateRequest{
			Subject: pkix.Name{
				CommonName:   DeviceIdentityCommonName,
				Organization: []string{"Sundial"},
			},
		},
		ChallengePassword: challenge,
	}
	der, err := x509util.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

// request wraps csrDER in a PKCSReq for the recipients.
func (d *scepDevice) request(tb testing.TB, recipients []*x509.Certificate, csrDER []byte) []byte {
	tb.Helper()
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		tb.Fatal(err)
	}
	msg, err := scep.NewCSRRequest(csr, &scep.PKIMessage{
		MessageType: scep.PKCSReq,
		Recipients:  recipients,
		SignerKey:   d.key,
		SignerCert:  d.cert,
	}, scep.WithCertsSelector(scep.EnciphermentCertsSelector()))
	if err != nil {
		tb.Fatal(err)
	}
	return msg.Raw
}

// pkcs7ProfileSigner signs profiles with CMS, SHA-256, content attached.
type pkcs7ProfileSigner struct {
	cert  *x509.Certificate
	key   crypto.Signer
	calls atomic.Int64
}

func (s *pkcs7ProfileSigner) SignProfile(profile []byte) ([]byte, error) {
	s.calls.Add(1)
	sd, err := pkcs7.NewSignedData(profile)
	if err != nil {
		return nil, err
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if err := sd.AddSigner(s.cert, s.key, pkcs7.SignerInfoConfig{}); err != nil {
		return nil, err
	}
	return sd.Finish()
}
