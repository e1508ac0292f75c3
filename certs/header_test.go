package certs_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/sundial-mdm/sundial/certs"
)

// nginxEscape escapes like nginx's $ssl_client_escaped_cert
// (ngx_escape_uri with NGX_ESCAPE_URI_COMPONENT): everything but
// unreserved characters becomes %XX.
func nginxEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

func TestCertFromHeader(t *testing.T) {
	device := readTestCert(t, "device.pem")
	devicePEM := string(readTestdata(t, "device.pem"))
	otherPEM := string(readTestdata(t, "other-device.pem"))
	keyPEM := string(readTestdata(t, "device.key"))
	b64 := base64.StdEncoding.EncodeToString(device.Raw)

	tests := []struct {
		name string
		have string
		want string // error substring; "" means device.pem is returned
	}{
		{"RFC 9440", ":" + b64 + ":", ""},
		{"RFC 9440 with spaces", "  :" + b64 + ":\t", ""},
		{"nginx escaped PEM", nginxEscape(devicePEM), ""},
		{"query escaped PEM (spaces as +)", url.QueryEscape(devicePEM), ""},
		{"path escaped PEM (+ kept)", url.PathEscape(devicePEM), ""},
		{"unescaped PEM", devicePEM, ""},
		{"escaped base64 DER (Traefik)", url.QueryEscape(b64), ""},
		{"empty", "", "empty"},
		{"only a colon", ":", "closing colon"},
		{"no closing colon", ":" + b64, "closing colon"},
		{"RFC 9440 not base64", ":not*base64:", "not base64"},
		{"RFC 9440 not a certificate", ":" + base64.StdEncoding.EncodeToString([]byte("hello")) + ":", "x509"},
		{"bad escape", "%zz", "not URL-escaped"},
		{"key instead of certificate", nginxEscape(keyPEM), "want \"CERTIFICATE\""},
		{"two certificates", nginxEscape(devicePEM + otherPEM), "more than one PEM block"},
		{"broken PEM", nginxEscape("-----BEGIN CERTIFICATE-----\nAAAA"), "malformed PEM"},
		{"neither", "hello world", "neither PEM nor base64"},
		{"too long", ":" + strings.Repeat("A", certs.MaxCertHeaderLen) + ":", "exceeds"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := certs.CertFromHeader(tc.have)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !got.Equal(device) {
					t.Fatalf("got %s, want device.pem", got.Subject)
				}
				return
			}
			if !errors.Is(err, certs.ErrBadCertHeader) {
				t.Fatalf("error = %v, want ErrBadCertHeader", err)
			}
			wantErr(t, err, tc.want)
		})
	}
}

func FuzzCertFromHeader(f *testing.F) {
	device := readTestCert(f, "device.pem")
	devicePEM := string(readTestdata(f, "device.pem"))
	f.Add(":" + base64.StdEncoding.EncodeToString(device.Raw) + ":")
	f.Add(nginxEscape(devicePEM))
	f.Add(url.QueryEscape(devicePEM))
	f.Add("")
	f.Add(":")
	f.Add("%")
	f.Fuzz(func(t *testing.T, value string) {
		cert, err := certs.CertFromHeader(value)
		if err != nil {
			if !errors.Is(err, certs.ErrBadCertHeader) {
				t.Fatalf("error does not wrap ErrBadCertHeader: %v", err)
			}
			return
		}
		// Whatever was accepted must round-trip through the RFC 9440 form.
		again, err := certs.CertFromHeader(":" + base64.StdEncoding.EncodeToString(cert.Raw) + ":")
		if err != nil || !again.Equal(cert) {
			t.Fatalf("round trip failed: %v", err)
		}
	})
}

func BenchmarkCertFromHeader(b *testing.B) {
	device := readTestCert(b, "device.pem")
	for _, bc := range []struct{ name, value string }{
		{"rfc9440", ":" + base64.StdEncoding.EncodeToString(device.Raw) + ":"},
		{"nginx", nginxEscape(string(readTestdata(b, "device.pem")))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := certs.CertFromHeader(bc.value); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
