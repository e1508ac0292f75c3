package certs

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ErrBadCertHeader is wrapped by every error CertFromHeader returns.
var ErrBadCertHeader = errors.New("invalid client certificate header")

// MaxCertHeaderLen caps the header value CertFromHeader accepts.
const MaxCertHeaderLen = 32 << 10

// CertFromHeader decodes a client certificate forwarded by a
// TLS-terminating proxy. It accepts:
//
//   - RFC 9440 Client-Cert: a structured-field byte sequence, ":base64-DER:";
//   - a URL-escaped PEM certificate, as nginx's $ssl_client_escaped_cert;
//   - a URL-escaped base64 DER without PEM armour, as Traefik forwards it.
//
// The value must hold exactly one certificate.
func CertFromHeader(value string) (*x509.Certificate, error) {
	value = strings.TrimSpace(value)
	switch {
	case value == "":
		return nil, fmt.Errorf("%w: empty", ErrBadCertHeader)
	case len(value) > MaxCertHeaderLen:
		return nil, fmt.Errorf("%w: %d bytes exceeds %d", ErrBadCertHeader, len(value), MaxCertHeaderLen)
	}
	var der []byte
	if strings.HasPrefix(value, ":") {
		if len(value) < 2 || !strings.HasSuffix(value, ":") {
			return nil, fmt.Errorf("%w: RFC 9440 value lacks its closing colon", ErrBadCertHeader)
		}
		b, err := base64.StdEncoding.DecodeString(value[1 : len(value)-1])
		if err != nil {
			return nil, fmt.Errorf("%w: RFC 9440 value is not base64: %w", ErrBadCertHeader, err)
		}
		der = b
	} else {
		b, err := decodeEscaped(value)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadCertHeader, err)
		}
		der = b
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCertHeader, err)
	}
	return cert, nil
}

// decodeEscaped handles the URL-escaped forms and returns the DER.
func decodeEscaped(value string) ([]byte, error) {
	// Path unescaping keeps a literal '+' (a base64 character); nginx
	// escapes '+' and ' ' anyway. Fall back to query unescaping for proxies
	// that write spaces as '+'.
	s, err := url.PathUnescape(value)
	if err != nil {
		return nil, fmt.Errorf("not URL-escaped: %w", err)
	}
	if strings.Contains(s, "-----BEGIN") {
		if strings.Contains(s, "-----BEGIN+") {
			if q, err := url.QueryUnescape(value); err == nil {
				s = q
			}
		}
		block, rest := pem.Decode([]byte(s))
		if block == nil {
			return nil, errors.New("malformed PEM")
		}
		if block.Type != pemTypeCert {
			return nil, fmt.Errorf("PEM block %q, want %q", block.Type, pemTypeCert)
		}
		if len(strings.TrimSpace(string(rest))) > 0 {
			return nil, errors.New("more than one PEM block")
		}
		return block.Bytes, nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("neither PEM nor base64 DER: %w", err)
	}
	return b, nil
}
