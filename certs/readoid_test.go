package certs

import (
	"bytes"
	"encoding/asn1"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// FuzzReadOID checks that readOID accepts exactly the OBJECT IDENTIFIERs
// cryptobyte decodes, and that two OIDs compare equal as bytes exactly
// when they do decoded.
func FuzzReadOID(f *testing.F) {
	for _, c := range [][]byte{
		oidSHA256, oidMessageDigest, {0x2a}, {0x80, 0x01}, {0x81}, {0x2a, 0x80, 0x01},
		{0xff, 0xff, 0xff, 0xff, 0x7f}, {0x8f, 0xff, 0xff, 0xff, 0x7f}, {0x87, 0xff, 0xff, 0xff, 0x7f}, {},
	} {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, content []byte) {
		var b cryptobyte.Builder
		b.AddASN1(cbasn1.OBJECT_IDENTIFIER, func(b *cryptobyte.Builder) { b.AddBytes(content) })
		der := b.BytesOrPanic()

		in1, in2 := cryptobyte.String(der), cryptobyte.String(der)
		var decoded asn1.ObjectIdentifier
		var raw []byte
		okDecoded := in1.ReadASN1ObjectIdentifier(&decoded)
		okRaw := readOID(&in2, &raw)
		if okDecoded != okRaw {
			t.Fatalf("% x: cryptobyte %v, readOID %v", content, okDecoded, okRaw)
		}
		if !okRaw {
			return
		}
		for _, known := range [][]byte{oidSHA1, oidSHA256, oidRSASHA256, oidECDSASHA256, oidSignedData, oidData, oidMessageDigest} {
			var k asn1.ObjectIdentifier
			ks := cryptobyte.String(append([]byte{0x06, byte(len(known))}, known...))
			if !ks.ReadASN1ObjectIdentifier(&k) {
				t.Fatal("known OID does not decode")
			}
			if decoded.Equal(k) != bytes.Equal(raw, known) {
				t.Fatalf("% x against %v: decoded equal %v, bytes equal %v", content, k, decoded.Equal(k), bytes.Equal(raw, known))
			}
		}
	})
}

// FuzzIsSignedDataOID: the in-place check says SignedData only when
// encoding/asn1 decodes the same bytes to the SignedData OID, so
// peekContentType answers as it does without the check.
func FuzzIsSignedDataOID(f *testing.F) {
	f.Add(append([]byte{0x06, byte(len(oidSignedData))}, oidSignedData...))
	f.Add(append([]byte{0x06, byte(len(oidData))}, oidData...))
	f.Add(append([]byte{0x06, 0x81, byte(len(oidSignedData))}, oidSignedData...))
	f.Add([]byte{0x06, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		if !isSignedDataOID(b) {
			return
		}
		oid, err := decodeOID(b)
		if err != nil || !oid.Equal(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}) {
			t.Fatalf("% x: in place SignedData, encoding/asn1 %v, %v", b, oid, err)
		}
	})
}
