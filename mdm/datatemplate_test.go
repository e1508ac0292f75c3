package mdm

import (
	"bytes"
	"testing"
)

// TestDataCommandTemplateMatchesEncoder checks that a templated command is
// byte for byte what NewCommand encodes for the same UUID and data.
func TestDataCommandTemplateMatchesEncoder(t *testing.T) {
	tmpl, err := NewDataCommandTemplate("InstallProfile", "Payload")
	if err != nil {
		t.Fatal(err)
	}
	for _, data := range [][]byte{nil, {0}, []byte("<?xml version=\"1.0\"?>\n<plist>&</plist>"), bytes.Repeat([]byte{0xff, 0x00, 0x7f}, 3000)} {
		have := tmpl.New(data)
		want, err := encodeCommand("InstallProfile", have.UUID, map[string]any{"Payload": data})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(have.Raw, want) {
			t.Fatalf("template and encoder differ:\nhave %s\nwant %s", have.Raw, want)
		}
		if have.RequestType != "InstallProfile" {
			t.Fatalf("request type %q", have.RequestType)
		}
		dec, err := DecodeCommand(have.Raw)
		if err != nil || dec.UUID != have.UUID {
			t.Fatalf("decode: %v, %+v", err, dec)
		}
	}
}

func BenchmarkInstallProfileCommand(b *testing.B) {
	profile := bytes.Repeat([]byte("<key>PayloadType</key>\n"), 60)
	tmpl, err := NewDataCommandTemplate("InstallProfile", "Payload")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("template", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			tmpl.New(profile)
		}
	})
	b.Run("encoder", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := NewCommand("InstallProfile", map[string]any{"Payload": profile}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
