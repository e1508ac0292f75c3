package enrollment

import (
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
// A DER message, what Macs send, is read in place (messageCertificates).
// Anything else goes through pkcs7.Parse, which ParsePKIMessage runs again
// right after: decoding twice that way cost measurable CPU per enrolment
// (docs/benchmarks.md).
func checkMessageKeys(der []byte) error {
	certs, ok := messageCertificates(der)
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
		certs = p7.Certificates
	}
	for _, c := range certs {
		if pub, ok := c.PublicKey.(*rsa.PublicKey); ok && pub.N.BitLen() > MaxRSAKeyBits {
			return fmt.Errorf("signer rsa key of %d bits, at most %d accepted", pub.N.BitLen(), MaxRSAKeyBits)
		}
	}
	return nil
}

// messageCertificates returns the certificates of der, a DER-encoded CMS
// ContentInfo holding SignedData (RFC 5652 §5.1), parsed with crypto/x509
// as pkcs7.Parse would. It returns false when der is not in that form
// (BER's indefinite lengths, another content type, a certificate that does
// not parse), leaving the verdict to pkcs7.Parse. It checks nothing after
// the certificates: ParsePKIMessage reads the whole message next.
func messageCertificates(der []byte) ([]*x509.Certificate, bool) {
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
	if !present {
		return nil, true
	}
	certs, err := x509.ParseCertificates(raw)
	if err != nil {
		return nil, false
	}
	return certs, true
}
