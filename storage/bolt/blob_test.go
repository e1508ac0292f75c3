package bolt

import (
	"bytes"
	"compress/flate"
	"crypto/rand"
	"encoding/binary"
	"strings"
	"testing"
)

func TestBlobRoundTrip(t *testing.T) {
	plist := []byte(`<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict>` +
		strings.Repeat("<key>QueryResponses</key><dict><key>OSVersion</key><string>15.2</string></dict>", 40) + `</dict></plist>`)
	noise := make([]byte, 4096)
	rand.Read(noise)
	for name, b := range map[string][]byte{
		"small":          []byte("<plist/>"),
		"plist":          plist,
		"incompressible": noise,
		"empty":          {},
	} {
		v := packBlob(b)
		if name == "plist" && (v[0] != blobS2 || len(v)*3 > len(b)) {
			t.Errorf("plist of %d bytes stored as %d bytes (marker %#x)", len(b), len(v), v[0])
		}
		if (name == "small" || name == "incompressible" && b[0] > blobS2) && !bytes.Equal(v, b) {
			t.Errorf("%s: stored transformed", name)
		}
		got, err := unpackBlob(v)
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("%s: round trip = %d bytes, %v", name, len(got), err)
		}
	}
	// A body kept as it is whose first byte is a marker still round-trips.
	for _, marker := range []byte{blobRaw, blobDeflate, blobS2} {
		for _, b := range [][]byte{{marker}, append([]byte{marker}, noise...)} {
			if got, err := unpackBlob(packBlob(b)); err != nil || !bytes.Equal(got, b) {
				t.Fatalf("body starting with %#x (%d bytes): round trip = %d bytes, %v", marker, len(b), len(got), err)
			}
		}
	}
	if got, err := unpackBlob(nil); got != nil || err != nil {
		t.Fatalf("unpackBlob(nil) = %q, %v", got, err)
	}
	// A body written by an earlier version (a plain plist) reads as is.
	if got, _ := unpackBlob(plist); !bytes.Equal(got, plist) {
		t.Fatal("plain body changed")
	}
	// A body deflated by an earlier version reads as is.
	var def bytes.Buffer
	def.WriteByte(blobDeflate)
	w, _ := flate.NewWriter(&def, flate.BestSpeed)
	w.Write(plist)
	w.Close()
	if got, err := unpackBlob(def.Bytes()); err != nil || !bytes.Equal(got, plist) {
		t.Fatalf("deflated body = %d bytes, %v", len(got), err)
	}
	if _, err := unpackBlob([]byte{blobDeflate, 0xff, 0x00, 0x13}); err == nil {
		t.Fatal("corrupt deflate stream decoded")
	}
	if _, err := unpackBlob([]byte{blobS2, 0x20, 0xff, 0x00, 0x13}); err == nil {
		t.Fatal("corrupt S2 block decoded")
	}
	// A stored length past the cap is refused before anything is allocated.
	huge := binary.AppendUvarint([]byte{blobS2}, blobMaxSize+1)
	if _, err := unpackBlob(append(huge, 0x00)); err == nil || !strings.Contains(err.Error(), "64 MB") {
		t.Fatalf("oversized S2 block: %v", err)
	}
}

// FuzzUnpackBlob: whatever a damaged file holds, reading it returns an error
// or a body, never a panic or an unbounded allocation.
func FuzzUnpackBlob(f *testing.F) {
	f.Add(packBlob([]byte(strings.Repeat("<key>OSVersion</key><string>15.2</string>", 30))))
	f.Add([]byte{blobS2, 0x05, 0x10, 'h', 'e', 'l', 'l', 'o'})
	f.Add([]byte{blobDeflate, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, v []byte) {
		out, err := unpackBlob(v)
		if err == nil && len(out) > blobMaxSize {
			t.Fatalf("%d bytes out", len(out))
		}
	})
}

func BenchmarkBlob(b *testing.B) {
	body := []byte(`<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict>` +
		strings.Repeat("<key>PayloadContent</key><array><dict><key>PayloadType</key><string>com.apple.ManagedClient.preferences</string></dict></array>", 20) + `</dict></plist>`)
	v := packBlob(body)
	b.Run("pack", func(b *testing.B) {
		for b.Loop() {
			packBlob(body)
		}
	})
	b.Run("unpack", func(b *testing.B) {
		for b.Loop() {
			if _, err := unpackBlob(v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(len(v))/float64(len(body)), "ratio")
}
