package bolt

import (
	"bytes"
	"crypto/rand"
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
		if name == "plist" && (v[0] != blobDeflate || len(v)*3 > len(b)) {
			t.Errorf("plist of %d bytes stored as %d bytes (marker %#x)", len(b), len(v), v[0])
		}
		if (name == "small" || name == "incompressible") && !bytes.Equal(v, b) {
			t.Errorf("%s: stored transformed", name)
		}
		got, err := unpackBlob(v)
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("%s: round trip = %d bytes, %v", name, len(got), err)
		}
	}
	if got, err := unpackBlob(nil); got != nil || err != nil {
		t.Fatalf("unpackBlob(nil) = %q, %v", got, err)
	}
	// A body written by an earlier version (a plain plist) reads as is.
	if got, _ := unpackBlob(plist); !bytes.Equal(got, plist) {
		t.Fatal("plain body changed")
	}
	if _, err := unpackBlob([]byte{blobDeflate, 0xff, 0x00, 0x13}); err == nil {
		t.Fatal("corrupt deflate stream decoded")
	}
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
