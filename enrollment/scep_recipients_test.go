package enrollment

import (
	"crypto/x509"
	"errors"
	"net/http"
	"testing"

	"github.com/smallstep/pkcs7"
	"github.com/smallstep/scep"
)

// everyCertRequest wraps csrDER in a PKCSReq encrypted to every certificate
// of recipients, as SCEP clients without a recipient selector do; it fails
// as they do when one of them is not an RSA key.
func (d *scepDevice) everyCertRequest(recipients []*x509.Certificate, csrDER []byte) ([]byte, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, err
	}
	msg, err := scep.NewCSRRequest(csr, &scep.PKIMessage{
		MessageType: scep.PKCSReq,
		Recipients:  recipients,
		SignerKey:   d.key,
		SignerCert:  d.cert,
	})
	if err != nil {
		return nil, err
	}
	return msg.Raw, nil
}

// TestSCEPClientEncryptingToEveryCertificate enrolls with a client that
// encrypts its request to every certificate of the GetCACert answer. Before,
// Sundial's answer held the ECDSA CA and such a client failed before sending
// anything; now every certificate is an RSA recipient, and the identity
// issued chains to the CA that the enrollment profile installs as an anchor.
func TestSCEPClientEncryptingToEveryCertificate(t *testing.T) {
	for _, tt := range []struct {
		name string
		pki  *testPKI
	}{
		{"ECDSA CA, RSA RA", newECDSAPKI(t)},
		{"RSA CA, RSA RA", newRSAPKIWithRA(t)},
		{"RSA CA as RA", newRSAPKI(t)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newSCEPFixture(t, tt.pki, mustShared(t, "every-recipient"))
			answer := f.caCerts(t)
			for _, c := range answer {
				if _, err := pkcs7.Encrypt([]byte("probe"), []*x509.Certificate{c}); err != nil {
					t.Errorf("certificate %q of GetCACert is not an encryption recipient: %v", c.Subject.CommonName, err)
				}
			}
			device := newSCEPDevice(t, testRSAKey(t, 1))
			req, err := device.everyCertRequest(answer, device.csr(t, "every-recipient"))
			if err != nil {
				t.Fatalf("client encrypting to every certificate: %v", err)
			}
			resp, body := f.post(t, "operation=PKIOperation", req)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			rep := certRep(t, body, tt.pki.ra)
			if rep.PKIStatus != scep.SUCCESS {
				t.Fatalf("pkiStatus = %v (failInfo %v), want SUCCESS", rep.PKIStatus, rep.FailInfo)
			}
			if err := rep.DecryptPKIEnvelope(device.cert, device.key); err != nil {
				t.Fatal(err)
			}

			// The anchor comes from the enrollment profile.
			profile, err := BuildProfile(ProfileConfig{PublicURL: "https://mdm.example.org", Topic: "com.apple.mgmt.test", Challenge: "c", CACert: tt.pki.ca})
			if err != nil {
				t.Fatal(err)
			}
			root := payloadOfType(t, decodeProfile(t, profile), PayloadTypeRoot)
			der, _ := root["PayloadContent"].([]byte)
			anchor, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatalf("profile's root payload: %v", err)
			}
			if scepC := payloadOfType(t, decodeProfile(t, profile), PayloadTypeSCEP)["PayloadContent"].(map[string]any); scepC["CAFingerprint"] != nil {
				t.Error("the profile pins a CAFingerprint, which the GetCACert answer may not hold")
			}
			roots := x509.NewCertPool()
			roots.AddCert(anchor)
			if _, err := rep.Certificate.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: testNow,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Errorf("issued identity does not chain to the profile's anchor: %v", err)
			}
		})
	}
}

// TestSCEPECDSACertificateIsNoRecipient pins down why the ECDSA CA is left
// out: the client library refuses it as a recipient.
func TestSCEPECDSACertificateIsNoRecipient(t *testing.T) {
	pki := newECDSAPKI(t)
	_, err := pkcs7.Encrypt([]byte("probe"), []*x509.Certificate{pki.ra, pki.ca})
	if !errors.Is(err, pkcs7.ErrUnsupportedKeyType) {
		t.Errorf("encrypting to the ECDSA CA: err = %v, want %v", err, pkcs7.ErrUnsupportedKeyType)
	}
}
