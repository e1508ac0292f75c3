package main

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/sundial-mdm/sundial/certs"
	"github.com/sundial-mdm/sundial/storage"
)

func authenticateBody(udid, topic string) []byte {
	return []byte(`<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict><key>MessageType</key><string>Authenticate</string><key>Topic</key><string>` + topic + `</string><key>UDID</key><string>` + udid + `</string></dict></plist>`)
}

// TestPublicCertificatesAreNoDeviceIdentity: the SCEP RA and profile-signer
// certificates are public (GetCACert, every profile) and signed by
// Sundial's CA; neither may enroll a device, by Mdm-Signature or through
// --cert-header.
func TestPublicCertificatesAreNoDeviceIdentity(t *testing.T) {
	ts := startTestServerWith(t, t.TempDir(), func(c *Config) { c.CertHeader = "X-Client-Cert" })
	ra, raKey := ts.app.authority.RA()
	signer, signerKey := ts.app.authority.ProfileSigner()
	for _, tc := range []struct {
		name string
		cert *x509.Certificate
		key  crypto.Signer
	}{{"SCEP RA", ra, raKey}, {"profile signer", signer, signerKey}} {
		t.Run(tc.name, func(t *testing.T) {
			udid := "FORGED-" + tc.cert.Subject.CommonName
			body := authenticateBody(udid, "com.apple.mgmt.test")
			sig, err := certs.SignMdmSignature(body, tc.cert, tc.key)
			if err != nil {
				t.Fatal(err)
			}
			if status, _ := ts.put(t, "/mdm/checkin", checkinCT, body, sig); status != http.StatusUnauthorized {
				t.Errorf("Mdm-Signature: status = %d, want 401", status)
			}
			req, _ := http.NewRequest(http.MethodPut, ts.url+"/mdm/checkin", bytes.NewReader(body))
			req.Header.Set("Content-Type", checkinCT)
			req.Header.Set("X-Client-Cert", url.QueryEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tc.cert.Raw}))))
			resp, err := ts.hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("--cert-header: status = %d, want 401", resp.StatusCode)
			}
			if _, err := ts.app.store.Device(t.Context(), udid); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("a device record was made: %v", err)
			}
		})
	}
}

// TestHostileSignatureHeaderOverHTTP: an oversized nested-BER Mdm-Signature
// is answered 401 without reaching the CMS library (its CPU cost is in
// certs.BenchmarkHostileSignature), and the server keeps serving.
func TestHostileSignatureHeaderOverHTTP(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	mac := ts.enroll(t)
	prefix := []byte{0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02, 0xa0, 0x80}
	for _, n := range []int{48 << 10 / 4, 1000} { // over the cap, and under it but too deep
		der := append(bytes.Clone(prefix), bytes.Repeat([]byte{0x30, 0x80}, n)...)
		der = append(der, make([]byte, 2*n+4)...)
		status, _ := ts.put(t, "/mdm/checkin", checkinCT, authenticateBody("HOSTILE", "x"), base64.StdEncoding.EncodeToString(der))
		if status != http.StatusUnauthorized {
			t.Errorf("nesting %d: status = %d, want 401", n, status)
		}
	}
	if _, err := mac.Connect(t.Context()); err != nil {
		t.Fatalf("a real Mac after the hostile headers: %v", err)
	}
}
