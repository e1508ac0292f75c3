package agentapi

import (
	"bytes"
	"strings"
	"testing"

	"github.com/micromdm/plist"

	"github.com/sundial-mdm/sundial/mdm"
)

const testCAPEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIBATAKBggqhkjOPQQDAjAQ&<>\n-----END CERTIFICATE-----\n"

// TestProfileTemplateMatchesEncoder checks that a filled template is byte
// for byte what the plist encoder writes for the same values.
func TestProfileTemplateMatchesEncoder(t *testing.T) {
	for _, tc := range []struct{ serverURL, caPEM string }{
		{"https://mdm.example.com", testCAPEM},
		{"https://mdm.example.com:8443/a?b=c&d=<e>", ""},
	} {
		tmpl, err := newProfileTemplate(tc.serverURL, tc.caPEM)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"0000FE00-1234ABCD5678EF90", "C02SUNDIAL01.user-1:x", strings.Repeat("A", 300)} {
			outer, inner, secret := mdm.NewUUID(), mdm.NewUUID(), strings.Repeat("0f", 32)
			have, ok := tmpl.fill(outer, inner, id, secret)
			if !ok {
				t.Fatalf("fill(%q) declined a plain value", id)
			}
			want, err := renderProfile(Settings{ServerURL: tc.serverURL, EnrollmentID: id, Secret: secret, CACertificate: tc.caPEM}, outer, inner)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(have, want) {
				t.Fatalf("template and encoder differ for %q:\nhave %s\nwant %s", id, have, want)
			}
		}
	}
}

// TestProfileTemplateDeclinesEscapedValues checks that values XML escapes
// are left to the encoder, and that the Provisioner's profile for them is
// still the encoder's.
func TestProfileTemplateDeclinesEscapedValues(t *testing.T) {
	tmpl, err := newProfileTemplate("https://mdm.example.com", testCAPEM)
	if err != nil {
		t.Fatal(err)
	}
	p := &Provisioner{serverURL: "https://mdm.example.com", caPEM: testCAPEM, tmpl: tmpl}
	for _, id := range []string{"a<b", "a&b", "a\"b", "a'b", "tab\tid", "new\nline", "é"} {
		if _, ok := tmpl.fill(mdm.NewUUID(), mdm.NewUUID(), id, "00"); ok {
			t.Errorf("fill(%q) took a value the encoder escapes", id)
		}
		doc, err := p.profile(id, "00")
		if err != nil {
			t.Fatal(err)
		}
		s, err := ParseSettings(settingsPayload(t, doc))
		if err != nil {
			t.Fatal(err)
		}
		if s.EnrollmentID != id || s.ServerURL != "https://mdm.example.com" || s.CACertificate != testCAPEM {
			t.Errorf("profile for %q reads back as %+v", id, s)
		}
	}
}

// TestProfileTemplateRefusesPlaceholderInConfig checks that a server URL
// holding a placeholder makes the template fail (the encoder is used).
func TestProfileTemplateRefusesPlaceholderInConfig(t *testing.T) {
	if _, err := newProfileTemplate("https://x/"+placeholder(fieldSecret), ""); err == nil {
		t.Fatal("template built with a placeholder in the server URL")
	}
}

// settingsPayload returns the settings payload dictionary of a profile,
// as a plist document of its own.
func settingsPayload(t *testing.T, doc []byte) []byte {
	t.Helper()
	var prof struct {
		PayloadContent []map[string]any
	}
	if err := plist.Unmarshal(doc, &prof); err != nil {
		t.Fatal(err)
	}
	if len(prof.PayloadContent) != 1 {
		t.Fatalf("%d payloads", len(prof.PayloadContent))
	}
	out, err := plist.Marshal(prof.PayloadContent[0])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func BenchmarkAgentProfile(b *testing.B) {
	tmpl, err := newProfileTemplate("https://mdm.example.com", testCAPEM)
	if err != nil {
		b.Fatal(err)
	}
	secret := strings.Repeat("0f", 32)
	b.Run("template", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := tmpl.fill(mdm.NewUUID(), mdm.NewUUID(), "0000FE00-1234ABCD5678EF90", secret); !ok {
				b.Fatal("declined")
			}
		}
	})
	b.Run("encoder", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := renderProfile(Settings{ServerURL: "https://mdm.example.com", EnrollmentID: "0000FE00-1234ABCD5678EF90", Secret: secret, CACertificate: testCAPEM}, mdm.NewUUID(), mdm.NewUUID()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
