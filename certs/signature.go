package certs

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/smallstep/pkcs7"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// ErrBadSignature is wrapped by every error VerifyMdmSignature returns.
var ErrBadSignature = errors.New("invalid Mdm-Signature")

// MaxSignatureHeaderLen caps the Mdm-Signature header VerifyMdmSignature
// accepts. Real headers are 2 to 2.5 KB (the simulator's RSA-2048 identity
// and the fixtures in testdata; TestSignatureHeaderCapMargin) and the
// largest identity Sundial issues (RSA-8192) signs in under 4 KB, so 8 KiB
// leaves twice that. Anything longer is refused before it is decoded.
const MaxSignatureHeaderLen = 8 << 10

// VerifyMdmSignature checks an Mdm-Signature header: the base64 of a
// detached CMS SignedData over body with exactly one signer whose
// certificate is embedded. SHA-1 and SHA-256 digests (and the SHA-2 family)
// are accepted, as devices use both. It returns the signer certificate.
//
// It checks only the signature, not the time: the signing-time attribute
// (the device's clock) is ignored. Whether the certificate is trusted and
// valid now is VerifyIdentity's job.
//
// The usual DER form is verified by an in-place parser (fastverify.go);
// anything else (BER, other signer forms) goes through smallstep/pkcs7:
// Parse, re-attach body, Verify.
func VerifyMdmSignature(header string, body []byte) (*x509.Certificate, error) {
	s, err := VerifyMdmSignatureSigner(header, body)
	if err != nil {
		return nil, err
	}
	cert, err := s.Certificate()
	if err != nil {
		return nil, fmt.Errorf("%w: signer certificate: %w", ErrBadSignature, err)
	}
	return cert, nil
}

// VerifyMdmSignatureSigner is VerifyMdmSignature without parsing the
// signer certificate when the fast path verified the signature: pass the
// Signer to Authority.VerifySigner, which parses it only if its chain
// check is not cached.
func VerifyMdmSignatureSigner(header string, body []byte) (*Signer, error) {
	header = strings.TrimSpace(header)
	switch {
	case header == "":
		return nil, fmt.Errorf("%w: empty header", ErrBadSignature)
	case len(header) > MaxSignatureHeaderLen:
		return nil, fmt.Errorf("%w: header of %d bytes exceeds %d", ErrBadSignature, len(header), MaxSignatureHeaderLen)
	}
	der, err := base64.StdEncoding.DecodeString(header)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64: %w", ErrBadSignature, err)
	}
	ct, err := peekContentType(der)
	if err != nil {
		return nil, fmt.Errorf("%w: not a CMS structure: %w", ErrBadSignature, err)
	}
	if !ct.Equal(pkcs7.OIDSignedData) {
		return nil, fmt.Errorf("%w: CMS content type %s, want SignedData (%s)", ErrBadSignature, ct, pkcs7.OIDSignedData)
	}
	if s, err := fastVerifyDetached(der, body); err == nil {
		return s, nil
	}
	cert, err := verifyWithPKCS7(der, body)
	if err != nil {
		return nil, err
	}
	return SignerOf(cert), nil
}

// verifyWithPKCS7 is the general path: pkcs7.Parse, re-attach the body,
// Verify, and return the single signer.
func verifyWithPKCS7(der, body []byte) (*x509.Certificate, error) {
	if err := checkBERShape(der); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	p7, err := parsePKCS7(der)
	if err != nil {
		return nil, fmt.Errorf("%w: parse CMS: %w", ErrBadSignature, err)
	}
	switch n := len(p7.Signers); n {
	case 0:
		return nil, fmt.Errorf("%w: no signer", ErrBadSignature)
	case 1:
	default:
		return nil, fmt.Errorf("%w: %d signers, want 1", ErrBadSignature, n)
	}
	cert := p7.GetOnlySigner()
	if cert == nil {
		return nil, fmt.Errorf("%w: signer certificate not included", ErrBadSignature)
	}
	// The library compares the signer's claimed signing time with the
	// certificate's validity. That time comes from the device's clock, and
	// a device whose clock is off would be locked out; validity is checked
	// against the server's clock by VerifyIdentity instead. So verify with
	// a shallow copy of the certificate whose validity is unbounded (the
	// signature check uses only its public key) and return the original.
	relaxed := *cert
	relaxed.NotBefore, relaxed.NotAfter = time.Time{}, maxTime
	for i, c := range p7.Certificates {
		if c == cert {
			p7.Certificates[i] = &relaxed
		}
	}
	p7.Content = body
	if err := p7.Verify(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	return cert, nil
}

// maxTime is later than any certificate's NotAfter.
var maxTime = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)

// parsePKCS7 calls pkcs7.Parse and turns a panic on hostile input into an
// error, so a malformed header can never take down a request handler.
func parsePKCS7(der []byte) (p7 *pkcs7.PKCS7, err error) {
	defer func() {
		if r := recover(); r != nil {
			p7, err = nil, fmt.Errorf("malformed CMS structure: %v", r)
		}
	}()
	return pkcs7.Parse(der)
}

// peekContentType reads the contentType OID of a CMS ContentInfo without
// decoding the rest. It accepts the BER indefinite-length form of the outer
// SEQUENCE as well as DER.
func peekContentType(der []byte) (asn1.ObjectIdentifier, error) {
	if len(der) < 2 || der[0] != 0x30 {
		return nil, errors.New("does not start with a SEQUENCE")
	}
	i := 2
	switch l := der[1]; {
	case l == 0x80, l < 0x80:
	case l <= 0x84:
		i += int(l & 0x7f)
	default:
		return nil, errors.New("bad length encoding")
	}
	if i >= len(der) {
		return nil, errors.New("truncated")
	}
	if isSignedDataOID(der[i:]) {
		return pkcs7.OIDSignedData, nil
	}
	return decodeOID(der[i:])
}

// isSignedDataOID reports whether b starts with the DER OID of SignedData,
// compared in place: decoding an OID allocates, and it is on every request.
func isSignedDataOID(b []byte) bool {
	in, v := cryptobyte.String(b), cryptobyte.String(nil)
	return in.ReadASN1(&v, cbasn1.OBJECT_IDENTIFIER) && bytes.Equal(v, oidSignedData)
}

// decodeOID decodes the OBJECT IDENTIFIER b starts with.
func decodeOID(b []byte) (asn1.ObjectIdentifier, error) {
	var oid asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(b, &oid); err != nil {
		return nil, errors.New("does not start with a content type OID")
	}
	return oid, nil
}

// SignMdmSignature makes an Mdm-Signature header value for body: the base64
// of a detached CMS SignedData with a SHA-256 digest, signed attributes and
// cert embedded. It is meant for tests and tools that act as a device.
func SignMdmSignature(body []byte, cert *x509.Certificate, key crypto.Signer) (string, error) {
	der, err := signCMS(body, cert, key, true)
	if err != nil {
		return "", fmt.Errorf("sign Mdm-Signature: %w", err)
	}
	return base64.StdEncoding.EncodeToString(der), nil
}

// SignProfile signs an enrollment profile: CMS SignedData with the profile
// attached, a SHA-256 digest, and the signer certificate included. Serve
// the result as application/x-apple-aspen-config.
func SignProfile(profile []byte, cert *x509.Certificate, key crypto.Signer) ([]byte, error) {
	der, err := signCMS(profile, cert, key, false)
	if err != nil {
		return nil, fmt.Errorf("sign profile: %w", err)
	}
	return der, nil
}

func signCMS(content []byte, cert *x509.Certificate, key crypto.Signer, detach bool) ([]byte, error) {
	switch {
	case cert == nil:
		return nil, errors.New("nil certificate")
	case key == nil:
		return nil, errors.New("nil key")
	case !keyMatches(cert, key):
		return nil, errors.New("key does not match certificate")
	}
	sd, err := pkcs7.NewSignedData(content)
	if err != nil {
		return nil, fmt.Errorf("new signed data: %w", err)
	}
	// The library defaults to SHA-1.
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if err := sd.AddSigner(cert, key, pkcs7.SignerInfoConfig{}); err != nil {
		return nil, fmt.Errorf("add signer: %w", err)
	}
	if detach {
		sd.Detach()
	}
	der, err := sd.Finish()
	if err != nil {
		return nil, fmt.Errorf("finish signed data: %w", err)
	}
	return der, nil
}
