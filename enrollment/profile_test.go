package enrollment

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/micromdm/plist"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

const testTopic = "com.apple.mgmt.External.4f1c2b9e-2a43-4d63-9a3c-0d7e2f3b5a11"

func goldenCA(tb testing.TB) *x509.Certificate {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "golden-ca.pem"))
	if err != nil {
		tb.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		tb.Fatal("testdata/golden-ca.pem: no pem block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		tb.Fatal(err)
	}
	return cert
}

func goldenConfig(tb testing.TB) ProfileConfig {
	return ProfileConfig{
		PublicURL: "https://mdm.example.org",
		Topic:     testTopic,
		Challenge: "shared-challenge-for-tests",
		CACert:    goldenCA(tb),
	}
}

// decoded mirrors the profile for reading it back.
type decoded struct {
	PayloadContent           []map[string]any
	PayloadDisplayName       string
	PayloadIdentifier        string
	PayloadOrganization      string
	PayloadRemovalDisallowed *bool
	PayloadScope             string
	PayloadType              string
	PayloadUUID              string
	PayloadVersion           int
}

func decodeProfile(tb testing.TB, b []byte) decoded {
	tb.Helper()
	var d decoded
	if err := plist.Unmarshal(b, &d); err != nil {
		tb.Fatalf("decode profile: %v", err)
	}
	return d
}

func payloadOfType(tb testing.TB, d decoded, typ string) map[string]any {
	tb.Helper()
	for _, p := range d.PayloadContent {
		if p["PayloadType"] == typ {
			return p
		}
	}
	tb.Fatalf("no payload of type %s", typ)
	return nil
}

func TestBuildProfileGolden(t *testing.T) {
	got, err := BuildProfile(goldenConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "enroll.golden.mobileconfig")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("profile differs from %s (run go test -update if intended):\n%s", path, got)
	}
}

func TestBuildProfileContent(t *testing.T) {
	cfg := goldenConfig(t)
	cfg.Organization = "Example Corp"
	cfg.UseDevelopmentAPNS = true
	b, err := BuildProfile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := decodeProfile(t, b)

	if len(d.PayloadContent) != 3 {
		t.Fatalf("PayloadContent has %d payloads, want exactly 3", len(d.PayloadContent))
	}
	root := payloadOfType(t, d, PayloadTypeRoot)
	scepP := payloadOfType(t, d, PayloadTypeSCEP)
	mdm := payloadOfType(t, d, PayloadTypeMDM)
	scepContent, _ := scepP["PayloadContent"].(map[string]any)

	tests := []struct {
		name       string
		have, want any
	}{
		{"top PayloadType", d.PayloadType, "Configuration"},
		{"top PayloadVersion", d.PayloadVersion, 1},
		{"top PayloadDisplayName", d.PayloadDisplayName, "Sundial MDM enrollment"},
		{"top PayloadOrganization", d.PayloadOrganization, "Example Corp"},
		{"top PayloadScope", d.PayloadScope, "System"},
		{"top PayloadRemovalDisallowed present", d.PayloadRemovalDisallowed != nil, true},
		{"top PayloadRemovalDisallowed", d.PayloadRemovalDisallowed != nil && *d.PayloadRemovalDisallowed, false},
		{"top PayloadIdentifier", d.PayloadIdentifier, DefaultIdentifier},
		{"ca content is the DER", root["PayloadContent"], cfg.CACert.Raw},
		{"scep URL", scepContent["URL"], "https://mdm.example.org/scep"},
		{"scep Challenge", scepContent["Challenge"], "shared-challenge-for-tests"},
		{"scep Keysize", scepContent["Keysize"], uint64(2048)},
		{"scep Key Type", scepContent["Key Type"], "RSA"},
		{"scep Key Usage", scepContent["Key Usage"], uint64(5)},
		{"scep Subject", scepContent["Subject"], []any{
			[]any{[]any{"O", "Example Corp"}},
			[]any{[]any{"CN", "Sundial device identity"}},
		}},
		{"mdm IdentityCertificateUUID", mdm["IdentityCertificateUUID"], scepP["PayloadUUID"]},
		{"mdm Topic", mdm["Topic"], testTopic},
		{"mdm ServerURL", mdm["ServerURL"], "https://mdm.example.org/mdm/connect"},
		{"mdm CheckInURL", mdm["CheckInURL"], "https://mdm.example.org/mdm/checkin"},
		{"mdm SignMessage", mdm["SignMessage"], true},
		{"mdm AccessRights", mdm["AccessRights"], uint64(8191)},
		{"mdm CheckOutWhenRemoved", mdm["CheckOutWhenRemoved"], true},
		{"mdm ServerCapabilities", mdm["ServerCapabilities"], []any{"com.apple.mdm.per-user-connections", "com.apple.mdm.bootstraptoken"}},
		{"mdm UseDevelopmentAPNS", mdm["UseDevelopmentAPNS"], true},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.have, tt.want) {
			t.Errorf("%s = %#v, want %#v", tt.name, tt.have, tt.want)
		}
	}

	uuidRE := regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{4}-5[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$`)
	seen := map[string]bool{d.PayloadUUID: true}
	if !uuidRE.MatchString(d.PayloadUUID) {
		t.Errorf("top PayloadUUID %q is not an uppercase v5 UUID", d.PayloadUUID)
	}
	for _, p := range d.PayloadContent {
		for _, key := range []string{"PayloadType", "PayloadVersion", "PayloadIdentifier", "PayloadUUID", "PayloadDisplayName"} {
			if _, ok := p[key]; !ok {
				t.Errorf("payload %v lacks %s", p["PayloadType"], key)
			}
		}
		if p["PayloadVersion"] != uint64(1) {
			t.Errorf("payload %v PayloadVersion = %v, want 1", p["PayloadType"], p["PayloadVersion"])
		}
		id, _ := p["PayloadUUID"].(string)
		if !uuidRE.MatchString(id) {
			t.Errorf("payload %v PayloadUUID %q is not an uppercase v5 UUID", p["PayloadType"], id)
		}
		if seen[id] {
			t.Errorf("PayloadUUID %s used twice", id)
		}
		seen[id] = true
		if ident, _ := p["PayloadIdentifier"].(string); !strings.HasPrefix(ident, DefaultIdentifier+".") {
			t.Errorf("payload %v PayloadIdentifier %q not under %s", p["PayloadType"], ident, DefaultIdentifier)
		}
	}
}

// TestBuildProfileMatchesNanoMDMShape checks that every key the nanomdm
// example profile sets is present in ours with the same plist type.
func TestBuildProfileMatchesNanoMDMShape(t *testing.T) {
	ref, err := os.ReadFile(filepath.Join("testdata", "nanomdm-enroll.mobileconfig"))
	if err != nil {
		t.Fatal(err)
	}
	var refTop, ourTop map[string]any
	if err := plist.Unmarshal(ref, &refTop); err != nil {
		t.Fatal(err)
	}
	ours, err := BuildProfile(goldenConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := plist.Unmarshal(ours, &ourTop); err != nil {
		t.Fatal(err)
	}
	sameShape(t, "top", refTop, ourTop)

	byType := func(top map[string]any) map[string]map[string]any {
		m := map[string]map[string]any{}
		for _, p := range top["PayloadContent"].([]any) {
			d := p.(map[string]any)
			m[d["PayloadType"].(string)] = d
		}
		return m
	}
	refPayloads, ourPayloads := byType(refTop), byType(ourTop)
	for typ, rp := range refPayloads {
		op, ok := ourPayloads[typ]
		if !ok {
			t.Errorf("no %s payload", typ)
			continue
		}
		sameShape(t, typ, rp, op)
		if rc, ok := rp["PayloadContent"].(map[string]any); ok {
			sameShape(t, typ+".PayloadContent", rc, op["PayloadContent"].(map[string]any))
		}
	}
	// Both use the SCEP payload's UUID as the MDM identity.
	for name, p := range map[string]map[string]map[string]any{"nanomdm": refPayloads, "ours": ourPayloads} {
		if p[PayloadTypeMDM]["IdentityCertificateUUID"] != p[PayloadTypeSCEP]["PayloadUUID"] {
			t.Errorf("%s: IdentityCertificateUUID does not name the SCEP payload", name)
		}
	}
}

func sameShape(t *testing.T, where string, ref, ours map[string]any) {
	t.Helper()
	for k, rv := range ref {
		ov, ok := ours[k]
		if !ok {
			t.Errorf("%s: key %q missing", where, k)
			continue
		}
		if reflect.TypeOf(rv) != reflect.TypeOf(ov) {
			t.Errorf("%s: key %q is %T, nanomdm has %T", where, k, ov, rv)
		}
	}
}

func uuidsOf(tb testing.TB, cfg ProfileConfig) []string {
	tb.Helper()
	b, err := BuildProfile(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	d := decodeProfile(tb, b)
	ids := []string{d.PayloadUUID}
	for _, p := range d.PayloadContent {
		ids = append(ids, p["PayloadUUID"].(string))
	}
	return ids
}

func TestBuildProfileUUIDsStable(t *testing.T) {
	base := goldenConfig(t)
	baseIDs := uuidsOf(t, base)
	tests := []struct {
		name     string
		change   func(*ProfileConfig)
		wantSame bool
	}{
		{"identical config", func(*ProfileConfig) {}, true},
		{"other challenge", func(c *ProfileConfig) { c.Challenge = "another" }, true},
		{"other organization", func(c *ProfileConfig) { c.Organization = "Other" }, true},
		{"trailing slash on url", func(c *ProfileConfig) { c.PublicURL += "/" }, true},
		{"other server", func(c *ProfileConfig) { c.PublicURL = "https://mdm2.example.org" }, false},
		{"path prefix", func(c *ProfileConfig) { c.PublicURL = "https://mdm.example.org/sundial" }, false},
		{"other topic", func(c *ProfileConfig) { c.Topic = "com.apple.mgmt.External.other" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			tt.change(&cfg)
			ids := uuidsOf(t, cfg)
			if same := slices.Equal(ids, baseIDs); same != tt.wantSame {
				t.Errorf("UUIDs same = %v, want %v\nbase %v\nhave %v", same, tt.wantSame, baseIDs, ids)
			}
			if !tt.wantSame {
				for _, id := range ids {
					if slices.Contains(baseIDs, id) {
						t.Errorf("UUID %s shared with the base profile", id)
					}
				}
			}
		})
	}
}

func TestNameUUIDKnownVector(t *testing.T) {
	// RFC 9562 appendix A.4: UUIDv5 of "www.example.com" in the DNS namespace.
	dns := [16]byte{0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}
	have := nameUUID(dns, "www.example.com")
	want := "2ED6657D-E927-568B-95E1-2665A8AEA6A2"
	if have != want {
		t.Errorf("nameUUID = %s, want %s", have, want)
	}
}

func TestProfileConfigValidate(t *testing.T) {
	ca := goldenCA(t)
	leaf := *ca
	leaf.IsCA = false
	tests := []struct {
		name    string
		change  func(*ProfileConfig)
		wantErr string // empty: valid
	}{
		{"valid", func(*ProfileConfig) {}, ""},
		{"valid with path prefix", func(c *ProfileConfig) { c.PublicURL = "https://example.org/mdm-server" }, ""},
		{"http refused", func(c *ProfileConfig) { c.PublicURL = "http://mdm.example.org" }, "require https"},
		{"http allowed for tests", func(c *ProfileConfig) { c.PublicURL = "http://127.0.0.1:8080"; c.AllowInsecureURL = true }, ""},
		{"ftp refused even insecure", func(c *ProfileConfig) { c.PublicURL = "ftp://x"; c.AllowInsecureURL = true }, "scheme must be https"},
		{"empty url", func(c *ProfileConfig) { c.PublicURL = "" }, "public url is empty"},
		{"no host", func(c *ProfileConfig) { c.PublicURL = "https:///path" }, "missing host"},
		{"query in url", func(c *ProfileConfig) { c.PublicURL = "https://mdm.example.org/?a=b" }, "query"},
		{"userinfo in url", func(c *ProfileConfig) { c.PublicURL = "https://u:p@mdm.example.org" }, "user info"},
		{"unparsable url", func(c *ProfileConfig) { c.PublicURL = "https://[::1" }, "parse public url"},
		{"empty topic", func(c *ProfileConfig) { c.Topic = "" }, "push topic is empty"},
		{"topic without prefix", func(c *ProfileConfig) { c.Topic = "com.example.push" }, "must start with"},
		{"bare prefix", func(c *ProfileConfig) { c.Topic = TopicPrefix }, "must start with"},
		{"any topic for tests", func(c *ProfileConfig) { c.Topic = "test.topic"; c.AllowAnyTopic = true }, ""},
		{"topic with space", func(c *ProfileConfig) { c.Topic = TopicPrefix + "a b" }, "whitespace"},
		{"empty challenge", func(c *ProfileConfig) { c.Challenge = "" }, "challenge is empty"},
		{"huge challenge", func(c *ProfileConfig) { c.Challenge = strings.Repeat("x", 2000) }, "too long"},
		{"no ca", func(c *ProfileConfig) { c.CACert = nil }, "ca certificate is missing"},
		{"leaf as ca", func(c *ProfileConfig) { c.CACert = &leaf }, "not a ca"},
		{"identifier with space", func(c *ProfileConfig) { c.Identifier = "com.example bad" }, "invalid characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := goldenConfig(t)
			cfg.CACert = ca
			tt.change(&cfg)
			err := cfg.Validate()
			_, buildErr := BuildProfile(cfg)
			switch {
			case tt.wantErr == "" && (err != nil || buildErr != nil):
				t.Errorf("Validate = %v, BuildProfile err = %v, want both nil", err, buildErr)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Validate = %v, want error containing %q", err, tt.wantErr)
			case tt.wantErr != "" && buildErr == nil:
				t.Errorf("BuildProfile accepted a config Validate refuses")
			}
		})
	}
}

func BenchmarkBuildProfile(b *testing.B) {
	cfg := goldenConfig(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := BuildProfile(cfg); err != nil {
			b.Fatal(err)
		}
	}
}

// The template path of SignedProfileWithChallenge gives the same profile as
// building it with the challenge, and a challenge that is not XML-safe is
// escaped by the full build.
func TestSignedProfileWithChallengeMatchesBuild(t *testing.T) {
	pki := newECDSAPKI(t)
	cfg := ProfileConfig{PublicURL: "https://mdm.example.com", CACert: pki.ca}
	signer := &recordingSigner{}
	h, err := NewProfileHandler(cfg, StaticTopic("com.apple.mgmt.External.t"), mustShared(t, "s"), signer, fixedClock{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range []string{"udid:ABC-1:xyz_-9", "a<b&c"} {
		if _, err := h.SignedProfileWithChallenge(context.Background(), ch); err != nil {
			t.Fatal(err)
		}
		want := cfg
		want.Topic, want.Challenge = "com.apple.mgmt.External.t", ch
		b, err := BuildProfile(want)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(signer.last, b) {
			t.Errorf("challenge %q: profile differs from BuildProfile", ch)
		}
	}
}

type recordingSigner struct{ last []byte }

func (s *recordingSigner) SignProfile(p []byte) ([]byte, error) {
	s.last = append([]byte(nil), p...)
	return p, nil
}
