package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/asn1"
	"errors"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// This file is a fast path for the common Mdm-Signature: a DER-encoded,
// detached SignedData with one signer identified by issuer and serial
// number, signed attributes, and RSA or ECDSA. It parses in place instead
// of going through pkcs7.Parse, whose BER-to-DER pass and reflection-based
// decoding cost more than the signature check itself.
//
// It only ever says "valid" when the message digest attribute matches the
// body and the signature over the signed attributes verifies with the
// signer's certificate. For anything else (BER, other forms, or a failed
// check) it returns errFastPathDeclined and VerifyMdmSignature asks
// smallstep/pkcs7, whose verdict is final. FuzzFastPathAgrees checks that
// the two agree.

var errFastPathDeclined = errors.New("fast path declined")

// setTag is the DER tag of a universal SET.
var setTag = [1]byte{0x31}

// The OIDs the fast path knows, as the contents of their DER encoding:
// compared in place, an OID costs no allocation (decoding one allocates a
// slice).
var (
	oidSHA1          = oidBytes(1, 3, 14, 3, 2, 26)
	oidSHA256        = oidBytes(2, 16, 840, 1, 101, 3, 4, 2, 1)
	oidSHA384        = oidBytes(2, 16, 840, 1, 101, 3, 4, 2, 2)
	oidSHA512        = oidBytes(2, 16, 840, 1, 101, 3, 4, 2, 3)
	oidRSA           = oidBytes(1, 2, 840, 113549, 1, 1, 1)
	oidRSASHA1       = oidBytes(1, 2, 840, 113549, 1, 1, 5)
	oidRSASHA256     = oidBytes(1, 2, 840, 113549, 1, 1, 11)
	oidRSASHA384     = oidBytes(1, 2, 840, 113549, 1, 1, 12)
	oidRSASHA512     = oidBytes(1, 2, 840, 113549, 1, 1, 13)
	oidECPublicKey   = oidBytes(1, 2, 840, 10045, 2, 1)
	oidECDSASHA1     = oidBytes(1, 2, 840, 10045, 4, 1)
	oidECDSASHA256   = oidBytes(1, 2, 840, 10045, 4, 3, 2)
	oidECDSASHA384   = oidBytes(1, 2, 840, 10045, 4, 3, 3)
	oidECDSASHA512   = oidBytes(1, 2, 840, 10045, 4, 3, 4)
	oidSignedData    = oidBytes(1, 2, 840, 113549, 1, 7, 2)
	oidData          = oidBytes(1, 2, 840, 113549, 1, 7, 1)
	oidMessageDigest = oidBytes(1, 2, 840, 113549, 1, 9, 4)
)

func hashForDigestOID(oid []byte) (crypto.Hash, bool) {
	switch {
	case bytes.Equal(oid, oidSHA1):
		return crypto.SHA1, true
	case bytes.Equal(oid, oidSHA256):
		return crypto.SHA256, true
	case bytes.Equal(oid, oidSHA384):
		return crypto.SHA384, true
	case bytes.Equal(oid, oidSHA512):
		return crypto.SHA512, true
	}
	return 0, false
}

// signatureOIDMatches reports whether the signer's signatureAlgorithm is
// consistent with the key type and digest.
func signatureOIDMatches(oid []byte, pub any, h crypto.Hash) bool {
	switch pub.(type) {
	case *rsa.PublicKey:
		switch {
		case bytes.Equal(oid, oidRSA):
			return true
		case bytes.Equal(oid, oidRSASHA1):
			return h == crypto.SHA1
		case bytes.Equal(oid, oidRSASHA256):
			return h == crypto.SHA256
		case bytes.Equal(oid, oidRSASHA384):
			return h == crypto.SHA384
		case bytes.Equal(oid, oidRSASHA512):
			return h == crypto.SHA512
		}
	case *ecdsa.PublicKey:
		switch {
		case bytes.Equal(oid, oidECPublicKey):
			return true
		case bytes.Equal(oid, oidECDSASHA1):
			return h == crypto.SHA1
		case bytes.Equal(oid, oidECDSASHA256):
			return h == crypto.SHA256
		case bytes.Equal(oid, oidECDSASHA384):
			return h == crypto.SHA384
		case bytes.Equal(oid, oidECDSASHA512):
			return h == crypto.SHA512
		}
	}
	return false
}

// fastVerifyDetached verifies der (a ContentInfo) as a detached signature
// over body and returns the signer certificate, or errFastPathDeclined.
// The certificate is not parsed in full: only its serial number, issuer
// and public key are read. Whether the rest of it is well formed, and
// whether it is trusted, is Authority.VerifySigner's business.
func fastVerifyDetached(der, body []byte) (*Signer, error) {
	// The fields this path skips (digest algorithms, algorithm parameters,
	// unsigned attributes) must still have the shape the pkcs7 path
	// demands, so that the two never disagree; a scan of a few KB.
	if checkBERShape(der) != nil {
		return nil, errFastPathDeclined
	}
	in := cryptobyte.String(der)
	var ci, content cryptobyte.String
	var ct []byte
	if !in.ReadASN1(&ci, cbasn1.SEQUENCE) || !in.Empty() ||
		!readOID(&ci, &ct) || !bytes.Equal(ct, oidSignedData) ||
		!ci.ReadASN1(&content, cbasn1.Tag(0).Constructed().ContextSpecific()) || !ci.Empty() {
		return nil, errFastPathDeclined
	}

	var sd, digestAlgs, encap, certsField, signerInfos cryptobyte.String
	var version int
	var hasCerts bool
	if !content.ReadASN1(&sd, cbasn1.SEQUENCE) || !content.Empty() ||
		!sd.ReadASN1Integer(&version) ||
		!sd.ReadASN1(&digestAlgs, cbasn1.SET) ||
		!sd.ReadASN1(&encap, cbasn1.SEQUENCE) ||
		!sd.ReadOptionalASN1(&certsField, &hasCerts, cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!hasCerts {
		return nil, errFastPathDeclined
	}
	// Detached: the encapsulated content is id-data with no eContent.
	var eType []byte
	if !readOID(&encap, &eType) || !bytes.Equal(eType, oidData) || !encap.Empty() {
		return nil, errFastPathDeclined
	}
	// No CRLs ([1]) expected; then the signer infos end the structure.
	if sd.PeekASN1Tag(cbasn1.Tag(1).Constructed().ContextSpecific()) ||
		!sd.ReadASN1(&signerInfos, cbasn1.SET) || !sd.Empty() {
		return nil, errFastPathDeclined
	}

	var si cryptobyte.String
	if !signerInfos.ReadASN1(&si, cbasn1.SEQUENCE) || !signerInfos.Empty() {
		return nil, errFastPathDeclined // zero or several signers
	}
	var siVersion int
	var ias, issuer, digestAlg, sigAlg cryptobyte.String
	var serialBytes cryptobyte.String
	var signedAttrsFull cryptobyte.String
	var signature []byte
	var digestOID, sigOID []byte
	if !si.ReadASN1Integer(&siVersion) ||
		!si.ReadASN1(&ias, cbasn1.SEQUENCE) ||
		!ias.ReadASN1Element(&issuer, cbasn1.SEQUENCE) ||
		!ias.ReadASN1(&serialBytes, cbasn1.INTEGER) || !ias.Empty() ||
		!si.ReadASN1(&digestAlg, cbasn1.SEQUENCE) ||
		!readOID(&digestAlg, &digestOID) ||
		!si.ReadASN1Element(&signedAttrsFull, cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!si.ReadASN1(&sigAlg, cbasn1.SEQUENCE) ||
		!readOID(&sigAlg, &sigOID) ||
		!si.ReadASN1Bytes(&signature, cbasn1.OCTET_STRING) {
		return nil, errFastPathDeclined
	}
	// Unsigned attributes ([1]) may follow; nothing else.
	if !si.Empty() {
		var unsigned cryptobyte.String
		if !si.ReadASN1(&unsigned, cbasn1.Tag(1).Constructed().ContextSpecific()) || !si.Empty() {
			return nil, errFastPathDeclined
		}
	}
	h, ok := hashForDigestOID(digestOID)
	if !ok || !h.Available() {
		return nil, errFastPathDeclined
	}

	// Find the signer certificate by issuer and serial number.
	wantSerial := positiveSerial(serialBytes)
	if wantSerial == nil {
		return nil, errFastPathDeclined
	}
	var signerRaw, signerSPKI []byte
	for !certsField.Empty() {
		var raw cryptobyte.String
		if !certsField.ReadASN1Element(&raw, cbasn1.SEQUENCE) {
			return nil, errFastPathDeclined
		}
		certIssuer, certSerial, spki, ok := certSignerFields(raw)
		if !ok {
			return nil, errFastPathDeclined
		}
		if bytes.Equal(certIssuer, issuer) && bytes.Equal(positiveSerial(certSerial), wantSerial) {
			if signerRaw != nil {
				return nil, errFastPathDeclined // ambiguous
			}
			signerRaw, signerSPKI = raw, spki
		}
	}
	if signerRaw == nil {
		return nil, errFastPathDeclined
	}
	pub, err := parsePublicKey(signerSPKI)
	if err != nil || !signatureOIDMatches(sigOID, pub, h) {
		return nil, errFastPathDeclined
	}

	// The message digest attribute must equal the digest of the body.
	attrs := cryptobyte.String(signedAttrsFull)
	var attrSet cryptobyte.String
	if !attrs.ReadASN1(&attrSet, cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return nil, errFastPathDeclined
	}
	var messageDigest []byte
	for !attrSet.Empty() {
		var attr, values cryptobyte.String
		var typ []byte
		if !attrSet.ReadASN1(&attr, cbasn1.SEQUENCE) ||
			!readOID(&attr, &typ) ||
			!attr.ReadASN1(&values, cbasn1.SET) || !attr.Empty() {
			return nil, errFastPathDeclined
		}
		if !bytes.Equal(typ, oidMessageDigest) {
			continue
		}
		if messageDigest != nil || !values.ReadASN1Bytes(&messageDigest, cbasn1.OCTET_STRING) || !values.Empty() {
			return nil, errFastPathDeclined
		}
	}
	if messageDigest == nil {
		return nil, errFastPathDeclined
	}
	hh := h.New()
	hh.Write(body)
	sum := hh.Sum(nil)
	if subtle.ConstantTimeCompare(sum, messageDigest) != 1 {
		return nil, errFastPathDeclined
	}

	// The signature covers the DER of the attributes as a SET: the same
	// bytes with the [0] IMPLICIT tag replaced by the universal SET tag,
	// hashed as that tag and then the rest (the DER is not copied).
	hh.Reset()
	hh.Write(setTag[:])
	hh.Write(signedAttrsFull[1:])
	digest := hh.Sum(sum[:0])
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		if rsa.VerifyPKCS1v15(pub, h, digest, signature) != nil {
			return nil, errFastPathDeclined
		}
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(pub, digest, signature) {
			return nil, errFastPathDeclined
		}
	default:
		return nil, errFastPathDeclined
	}
	return &Signer{Raw: signerRaw, Sum: sha256.Sum256(signerRaw)}, nil
}

// certSignerFields reads a certificate's issuer (the whole Name element,
// as x509.Certificate.RawIssuer), serial number (the INTEGER's content)
// and subjectPublicKeyInfo (the whole element) without parsing the rest.
func certSignerFields(raw []byte) (issuer, serial, spki []byte, ok bool) {
	in := cryptobyte.String(raw)
	var cert, tbs cryptobyte.String
	var ser, iss, key cryptobyte.String
	if !in.ReadASN1(&cert, cbasn1.SEQUENCE) || !in.Empty() ||
		!cert.ReadASN1(&tbs, cbasn1.SEQUENCE) ||
		!tbs.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) || // version
		!tbs.ReadASN1(&ser, cbasn1.INTEGER) ||
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // signature algorithm
		!tbs.ReadASN1Element(&iss, cbasn1.SEQUENCE) ||
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // validity
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // subject
		!tbs.ReadASN1Element(&key, cbasn1.SEQUENCE) {
		return nil, nil, nil, false
	}
	return iss, ser, key, true
}

// positiveSerial returns the magnitude of a DER INTEGER's content, without
// its sign-padding zero bytes, or nil for zero, negative or empty numbers
// (left to the slow path).
func positiveSerial(b []byte) []byte {
	if len(b) == 0 || b[0]&0x80 != 0 {
		return nil
	}
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	if len(b) == 0 {
		return nil
	}
	return b
}

// oidBytes returns the contents of the DER encoding of an OBJECT IDENTIFIER.
func oidBytes(ids ...int) []byte {
	der, err := asn1.Marshal(asn1.ObjectIdentifier(ids))
	if err != nil {
		panic(err)
	}
	in := cryptobyte.String(der)
	var out cryptobyte.String
	if !in.ReadASN1(&out, cbasn1.OBJECT_IDENTIFIER) {
		panic("certs: bad OID")
	}
	return out
}

// readOID reads an OBJECT IDENTIFIER's contents without decoding them. It
// accepts exactly what cryptobyte's ReadASN1ObjectIdentifier accepts, so
// the fast path declines the same malformed OIDs it declined before.
func readOID(s *cryptobyte.String, out *[]byte) bool {
	var v cryptobyte.String
	if !s.ReadASN1(&v, cbasn1.OBJECT_IDENTIFIER) || len(v) == 0 {
		return false
	}
	// Each subidentifier: base 128, minimal (no leading 0x80), at most
	// five bytes and below 2^31, as cryptobyte's readBase128Int.
	ret, i := 0, 0
	for _, b := range v {
		if i == 5 || ret >= 1<<(31-7) || (i == 0 && b == 0x80) {
			return false
		}
		ret = ret<<7 | int(b&0x7f)
		i++
		if b&0x80 == 0 {
			ret, i = 0, 0
		}
	}
	if i != 0 {
		return false // truncated
	}
	*out = v
	return true
}
