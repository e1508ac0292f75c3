package certs_test

import (
	"bytes"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/sundial-mdm/sundial/certs"
	"github.com/sundial-mdm/sundial/certs/certstest"
	"github.com/sundial-mdm/sundial/mdm/mdmtest"
)

// signedDataPrefix is the start of a BER ContentInfo for SignedData with
// indefinite lengths: what a hostile header needs to get past the content
// type check to the general path.
var signedDataPrefix = []byte{0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02, 0xa0, 0x80}

// nestedBER is signedDataPrefix followed by depth indefinite-length
// SEQUENCEs, each closed by an end-of-contents marker.
func nestedBER(depth int) []byte {
	b := bytes.Clone(signedDataPrefix)
	b = append(b, bytes.Repeat([]byte{0x30, 0x80}, depth)...)
	return append(b, make([]byte, 2*(depth+2))...)
}

// wideBER is signedDataPrefix and a SignedData SEQUENCE holding n NULLs.
func wideBER(n int) []byte {
	b := append(bytes.Clone(signedDataPrefix), 0x30, 0x80)
	b = append(b, bytes.Repeat([]byte{0x05, 0x00}, n)...)
	return append(b, make([]byte, 6)...)
}

// nestedWideBER is nestedBER with n NULLs at the bottom.
func nestedWideBER(depth, n int) []byte {
	b := bytes.Clone(signedDataPrefix)
	b = append(b, bytes.Repeat([]byte{0x30, 0x80}, depth)...)
	b = append(b, bytes.Repeat([]byte{0x05, 0x00}, n)...)
	return append(b, make([]byte, 2*(depth+2))...)
}

// hostileHeaders are the costliest shapes found for the general path, each
// as long as the header cap allows (or as the shape gets).
func hostileHeaders() map[string]string {
	b64 := base64.StdEncoding.EncodeToString
	maxDER := certs.MaxSignatureHeaderLen / 4 * 3
	return map[string]string{
		"nested, refused by depth":    b64(nestedBER((maxDER - len(signedDataPrefix)) / 4)),
		"nested, deepest allowed":     b64(nestedBER(17)),
		"nested and wide":             b64(nestedWideBER(17, 490)),
		"wide, refused by count":      b64(wideBER((maxDER - len(signedDataPrefix) - 8) / 2)),
		"wide, most elements":         b64(wideBER(500)),
		"48 KiB nesting (the report)": b64(nestedBER(48 << 10 / 4)),
	}
}

// TestHostileBERRefused: deep or wide BER is refused before smallstep/pkcs7
// sees it, with ErrBadSignature, and real signatures (DER and BER) pass.
func TestHostileBERRefused(t *testing.T) {
	body := readTestdata(t, "body.plist")
	for name, h := range hostileHeaders() {
		t.Run(name, func(t *testing.T) {
			if _, err := certs.VerifyMdmSignature(h, body); !errors.Is(err, certs.ErrBadSignature) {
				t.Fatalf("err = %v, want ErrBadSignature", err)
			}
		})
	}
	for _, name := range []string{"mdm-signature.sha256.b64", "mdm-signature.sha1.b64", "mdm-signature.ber.sha256.b64"} {
		if _, err := certs.VerifyMdmSignature(readHeader(t, name), body); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, tc := range []struct {
		name string
		der  []byte
		want string
	}{
		{"deeper than the limit", nestedBER(30), "nested deeper"},
		{"more elements than the limit", wideBER(600), "more than"},
		{"trailing bytes", append(nestedBER(3), 0x05, 0x00), "after the outer"},
		{"indefinite primitive", append(bytes.Clone(signedDataPrefix), 0x04, 0x80, 0, 0, 0, 0, 0, 0), "primitive"},
		{"length past the end", append(bytes.Clone(signedDataPrefix), 0x04, 0x82, 0x10, 0x00), "past the end"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := certs.VerifyMdmSignature(base64.StdEncoding.EncodeToString(tc.der), body)
			if !errors.Is(err, certs.ErrBadSignature) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrBadSignature mentioning %q", err, tc.want)
			}
		})
	}
}

// TestSignatureHeaderCapMargin measures the headers the simulator sends (an
// RSA-2048 identity issued by Sundial, SHA-256 and SHA-1) and the OpenSSL
// fixtures: the cap keeps at least twice the longest.
func TestSignatureHeaderCapMargin(t *testing.T) {
	body := readTestdata(t, "body.plist")
	a := certstest.NewAuthority(t, t0)
	rsa2048, _ := rsaKeys(t)
	id, err := a.IssueIdentity(newCSR(t, rsa2048, pkix.Name{CommonName: "Sundial Identity 4F0B5D4E-8C1A-4E0B-9B53-6E1C8E2B7A11"}), t0)
	if err != nil {
		t.Fatal(err)
	}
	longest := 0
	for _, sha1 := range []bool{false, true} {
		h, err := mdmtest.SignMessage(body, id, rsa2048, sha1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := certs.VerifyMdmSignature(h, body); err != nil {
			t.Fatal(err)
		}
		longest = max(longest, len(h))
	}
	for _, name := range []string{"mdm-signature.sha256.b64", "mdm-signature.sha1.b64", "mdm-signature.ber.sha256.b64"} {
		longest = max(longest, len(readHeader(t, name)))
	}
	t.Logf("longest real header: %d bytes, cap %d", longest, certs.MaxSignatureHeaderLen)
	if 2*longest > certs.MaxSignatureHeaderLen {
		t.Errorf("cap %d leaves less than twice the longest real header (%d)", certs.MaxSignatureHeaderLen, longest)
	}
}

// BenchmarkHostileSignature is the CPU an unauthenticated request can make
// the signature check spend: each hostile shape must stay under 2 ms
// (docs/benchmarks.md).
func BenchmarkHostileSignature(b *testing.B) {
	body := readTestdata(b, "body.plist")
	headers := hostileHeaders()
	headers["real header, tampered body"] = readHeader(b, "mdm-signature.ber.sha256.b64")
	for name, h := range headers {
		b.Run(strings.ReplaceAll(name, " ", "_"), func(b *testing.B) {
			for b.Loop() {
				if _, err := certs.VerifyMdmSignature(h, append(body, 'x')); err == nil {
					b.Fatal("verified")
				}
			}
		})
	}
}

// FuzzCheckBERShape: the walk never panics or loops on any input, and
// loosening its limits never turns an accepted input into a refused one.
func FuzzCheckBERShape(f *testing.F) {
	for _, name := range []string{"mdm-signature.sha256.b64", "mdm-signature.ber.sha256.b64"} {
		der, _ := base64.StdEncoding.DecodeString(readHeader(f, name))
		f.Add(der)
	}
	f.Add(nestedBER(25))
	f.Add(wideBER(600))
	f.Add([]byte{0x30, 0x80, 0x00, 0x00})
	f.Add([]byte{0x1f, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		err := certs.CheckBERShape(der, 8, 64)
		if err == nil {
			if err := certs.CheckBERShape(der, 9, 65); err != nil {
				t.Fatalf("accepted with limits 8/64, refused with 9/65: %v", err)
			}
		}
	})
}
