package enrollment

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"

	"github.com/smallstep/pkcs7"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	sundialcerts "github.com/sundial-mdm/sundial/certs"
)

var (
	oidSignedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidData       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
)

// Limits on a BER PKI message's shape: a real one nests about a dozen
// levels and holds a few hundred elements; BER encoders may split the
// encrypted content into many OCTET STRING chunks, hence the margin.
const (
	maxSCEPBERDepth    = 24
	maxSCEPBERElements = 4096
)

// checkMessageKeys refuses a PKI message whose certificates carry RSA keys
// too large to verify cheaply. It runs before scep.ParsePKIMessage, which
// verifies the signature.
//
// A DER message, what Macs send, is read in place (messageKeys).
// Anything else goes through pkcs7.Parse, which ParsePKIMessage runs again
// right after: decoding twice that way cost measurable CPU per enrolment
// (docs/benchmarks.md).
func checkMessageKeys(der []byte) error {
	keys, ok := messageKeys(der)
	if !ok {
		// BER (not what Macs send): bound its shape before pkcs7 sees it
		// (a 4 KB nest of indefinite lengths cost 2.5 ms of pkcs7.Parse).
		if err := sundialcerts.CheckBERShape(der, maxSCEPBERDepth, maxSCEPBERElements); err != nil {
			return fmt.Errorf("malformed pki message: %w", err)
		}
		p7, err := pkcs7.Parse(der)
		if err != nil {
			return errors.New("malformed pki message")
		}
		for _, c := range p7.Certificates {
			keys = append(keys, c.PublicKey)
		}
	}
	for _, k := range keys {
		if pub, ok := k.(*rsa.PublicKey); ok && pub.N.BitLen() > MaxRSAKeyBits {
			return fmt.Errorf("signer rsa key of %d bits, at most %d accepted", pub.N.BitLen(), MaxRSAKeyBits)
		}
	}
	return nil
}

// messageKeys returns the public keys of the certificates of der, a
// DER-encoded CMS ContentInfo holding SignedData (RFC 5652 §5.1), each
// parsed by x509.ParsePKIXPublicKey from the certificate's
// subjectPublicKeyInfo: pkcs7.Parse parses the whole certificates next, so
// only the keys are read here. It returns false when der is not in that
// form (BER's indefinite lengths, another content type, a certificate or
// key that does not parse so), leaving the verdict to pkcs7.Parse. It
// checks nothing after the certificates: ParsePKIMessage reads the whole
// message next.
func messageKeys(der []byte) ([]crypto.PublicKey, bool) {
	raw, ok := messageCertificatesDER(der)
	if !ok {
		return nil, false
	}
	var keys []crypto.PublicKey
	for !raw.Empty() {
		var cert, tbs, spki cryptobyte.String
		// Certificate: tbsCertificate first. tbsCertificate: [0] version
		// (optional), serialNumber, signature, issuer, validity, subject,
		// subjectPublicKeyInfo (RFC 5280 §4.1), as crypto/x509 reads it.
		if !raw.ReadASN1(&cert, cbasn1.SEQUENCE) || !cert.ReadASN1(&tbs, cbasn1.SEQUENCE) ||
			!tbs.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) ||
			!tbs.SkipASN1(cbasn1.INTEGER) || !tbs.SkipASN1(cbasn1.SEQUENCE) ||
			!tbs.SkipASN1(cbasn1.SEQUENCE) || !tbs.SkipASN1(cbasn1.SEQUENCE) ||
			!tbs.SkipASN1(cbasn1.SEQUENCE) || !tbs.ReadASN1Element(&spki, cbasn1.SEQUENCE) {
			return nil, false
		}
		pub, err := x509.ParsePKIXPublicKey(spki)
		if err != nil {
			return nil, false
		}
		keys = append(keys, pub)
	}
	return keys, true
}

// messageCertificatesDER returns the content of the [0] certificates field
// of der, a DER-encoded CMS ContentInfo holding SignedData that
// encapsulates id-data, or an empty string when there is none. It returns
// false when der is not in that form.
func messageCertificatesDER(der []byte) (cryptobyte.String, bool) {
	in := cryptobyte.String(der)
	var info, explicit, sd cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !in.ReadASN1(&info, cbasn1.SEQUENCE) || !in.Empty() ||
		!info.ReadASN1ObjectIdentifier(&oid) || !oid.Equal(oidSignedData) ||
		!info.ReadASN1(&explicit, cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!explicit.ReadASN1(&sd, cbasn1.SEQUENCE) {
		return nil, false
	}
	// version, digestAlgorithms, encapContentInfo, then [0] certificates.
	// A SCEP message encapsulates id-data; any other content type is left
	// to pkcs7.Parse, which reads such messages differently (fuzzing found
	// one where it saw no certificates at all).
	var encap cryptobyte.String
	var inner asn1.ObjectIdentifier
	if !sd.SkipASN1(cbasn1.INTEGER) || !sd.SkipASN1(cbasn1.SET) || !sd.ReadASN1(&encap, cbasn1.SEQUENCE) ||
		!encap.ReadASN1ObjectIdentifier(&inner) || !inner.Equal(oidData) {
		return nil, false
	}
	var raw cryptobyte.String
	var present bool
	if !sd.ReadOptionalASN1(&raw, &present, cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return nil, false
	}
	return raw, true
}
