package certs

import (
	"errors"
	"fmt"
)

// Limits on the BER structure of an Mdm-Signature handed to smallstep/pkcs7.
// The library's BER-to-DER pass and reflection decoder cost far more per
// byte on deeply nested indefinite-length input than on a real signature
// (74 ms for 48 KiB of nesting, against ~0.1 ms for a real header), so such
// input is refused before it gets there. A real CMS signature nests about
// ten levels deep (ContentInfo, SignedData, certificates, Certificate,
// TBSCertificate, extensions, Extension, ...) and holds about 120 elements
// (the fixtures in testdata); the limits leave a wide margin.
const (
	maxBERDepth    = 20
	maxBERElements = 512
)

var errBERLimit = errors.New("BER structure over the limits")

// checkBERShape is CheckBERShape with the Mdm-Signature limits.
func checkBERShape(der []byte) error { return CheckBERShape(der, maxBERDepth, maxBERElements) }

// CheckBERShape walks der as BER without decoding any value and refuses
// input that is malformed, nests deeper than maxDepth (at most 64), has more
// than maxElements elements, or trails bytes after the outer element. It
// costs one pass over the bytes with no allocation beyond a fixed stack.
// Run it before handing untrusted BER to smallstep/pkcs7, whose cost grows
// much faster than the input on deep indefinite-length nesting.
func CheckBERShape(der []byte, maxDepth, maxElements int) error {
	maxDepth = min(maxDepth, 64)
	// end[i] is where the constructed element at depth i ends (-1:
	// indefinite length, ended by an end-of-contents marker).
	var end [65]int
	depth, elements, i := 0, 0, 0
	end[0] = len(der)
	for {
		// Close every definite-length element that ends here.
		for depth > 0 && end[depth] == i {
			depth--
		}
		if depth == 0 && i == len(der) {
			return nil
		}
		if i >= len(der) {
			return fmt.Errorf("%w: truncated", errBERLimit)
		}
		if end[depth] != -1 && i > end[depth] {
			return fmt.Errorf("%w: element overruns its parent", errBERLimit)
		}
		// End-of-contents closes an indefinite-length element.
		if der[i] == 0 && i+1 < len(der) && der[i+1] == 0 && depth > 0 && end[depth] == -1 {
			i += 2
			depth--
			continue
		}
		if elements++; elements > maxElements {
			return fmt.Errorf("%w: more than %d elements", errBERLimit, maxElements)
		}
		if depth == 0 && elements > 1 {
			return fmt.Errorf("%w: data after the outer element", errBERLimit)
		}
		tag := der[i]
		i++
		if tag&0x1f == 0x1f { // high tag number: base-128, at most 4 bytes
			for n := 0; ; n++ {
				if i >= len(der) || n == 4 {
					return fmt.Errorf("%w: bad tag", errBERLimit)
				}
				b := der[i]
				i++
				if b&0x80 == 0 {
					break
				}
			}
		}
		if i >= len(der) {
			return fmt.Errorf("%w: truncated", errBERLimit)
		}
		constructed := tag&0x20 != 0
		l := int(der[i])
		i++
		length := -1
		switch {
		case l < 0x80:
			length = l
		case l == 0x80:
			if !constructed {
				return fmt.Errorf("%w: indefinite length on a primitive", errBERLimit)
			}
		case l <= 0x84:
			n := l & 0x7f
			if i+n > len(der) {
				return fmt.Errorf("%w: truncated length", errBERLimit)
			}
			length = 0
			for _, b := range der[i : i+n] {
				length = length<<8 | int(b)
			}
			i += n
		default:
			return fmt.Errorf("%w: bad length", errBERLimit)
		}
		if length > len(der)-i {
			return fmt.Errorf("%w: length past the end", errBERLimit)
		}
		if !constructed {
			i += length
			continue
		}
		if depth == maxDepth {
			return fmt.Errorf("%w: nested deeper than %d", errBERLimit, maxDepth)
		}
		depth++
		if length >= 0 {
			end[depth] = i + length
		} else {
			end[depth] = -1
		}
	}
}
