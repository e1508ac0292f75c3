package agentapi

import (
	"bytes"
	"fmt"

	"github.com/micromdm/plist"
)

// profileTemplate is the settings profile of one Provisioner rendered once
// by the plist encoder with placeholders for the four values that change
// per device (two payload UUIDs, the enrollment ID and the secret), split
// at them. Filling it is a few copies, where the plist encoder's
// reflection took ~40 KB of allocations per enrolment (docs/benchmarks.md,
// issue 24). Values that XML would escape go through the encoder instead.
type profileTemplate struct {
	parts [][]byte       // len(slots)+1 literal pieces, in output order
	slots []profileField // which value goes between parts[i] and parts[i+1]
}

type profileField int

const (
	fieldOuterUUID profileField = iota
	fieldInnerUUID
	fieldEnrollmentID
	fieldSecret
	numProfileFields
)

// placeholder is the marker for f in the rendered template: plain ASCII,
// which the encoder writes verbatim.
func placeholder(f profileField) string {
	return fmt.Sprintf("SUNDIALPROFILESLOT%dX9Q", int(f))
}

// newProfileTemplate renders the profile for serverURL and caPEM with
// placeholders and splits it. It fails if a placeholder is not found
// exactly once (serverURL or caPEM containing one, say), in which case
// the Provisioner uses the encoder for every profile.
func newProfileTemplate(serverURL, caPEM string) (*profileTemplate, error) {
	var vals [numProfileFields]string
	for f := range numProfileFields {
		vals[f] = placeholder(f)
	}
	doc, err := renderProfile(Settings{ServerURL: serverURL, EnrollmentID: vals[fieldEnrollmentID],
		Secret: vals[fieldSecret], CACertificate: caPEM}, vals[fieldOuterUUID], vals[fieldInnerUUID])
	if err != nil {
		return nil, err
	}
	t := &profileTemplate{}
	rest := doc
	for {
		at, which := -1, profileField(-1)
		for f := range numProfileFields {
			if i := bytes.Index(rest, []byte(vals[f])); i >= 0 && (at < 0 || i < at) {
				at, which = i, f
			}
		}
		if at < 0 {
			break
		}
		t.parts = append(t.parts, rest[:at])
		t.slots = append(t.slots, which)
		rest = rest[at+len(vals[which]):]
	}
	t.parts = append(t.parts, rest)
	if len(t.slots) != int(numProfileFields) {
		return nil, fmt.Errorf("profile template: %d placeholders, want %d", len(t.slots), numProfileFields)
	}
	seen := map[profileField]bool{}
	for _, f := range t.slots {
		if seen[f] {
			return nil, fmt.Errorf("profile template: placeholder %d twice", f)
		}
		seen[f] = true
	}
	return t, nil
}

// fill returns the profile with the given values, or false if one of them
// is not plain (see plainValue), for the encoder to render instead.
func (t *profileTemplate) fill(outerUUID, innerUUID, enrollmentID, secret string) ([]byte, bool) {
	vals := [numProfileFields]string{outerUUID, innerUUID, enrollmentID, secret}
	n := 0
	for _, p := range t.parts {
		n += len(p)
	}
	for _, v := range vals {
		if !plainValue(v) {
			return nil, false
		}
		n += len(v)
	}
	out := make([]byte, 0, n)
	for i, f := range t.slots {
		out = append(out, t.parts[i]...)
		out = append(out, vals[f]...)
	}
	return append(out, t.parts[len(t.parts)-1]...), true
}

// plainValue reports whether the XML encoder writes s unchanged: printable
// ASCII without the characters it escapes.
func plainValue(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '<' || c == '>' || c == '&' || c == '\'' || c == '"' {
			return false
		}
	}
	return true
}

// renderProfile builds the settings profile (a configuration profile with
// one payload of the agent's preference domain) with the plist encoder.
func renderProfile(s Settings, outerUUID, innerUUID string) ([]byte, error) {
	inner := map[string]any{
		"PayloadType":        PreferenceDomain,
		"PayloadVersion":     1,
		"PayloadIdentifier":  PreferenceDomain + ".settings.payload",
		"PayloadUUID":        innerUUID,
		"PayloadDisplayName": "Sundial agent settings",
		"ServerURL":          s.ServerURL,
		"EnrollmentID":       s.EnrollmentID,
		"Secret":             s.Secret,
	}
	if s.CACertificate != "" {
		inner["CACertificate"] = s.CACertificate
	}
	return plist.MarshalIndent(map[string]any{
		"PayloadType":        "Configuration",
		"PayloadVersion":     1,
		"PayloadIdentifier":  PreferenceDomain + ".settings",
		"PayloadUUID":        outerUUID,
		"PayloadDisplayName": "Sundial agent settings",
		"PayloadScope":       "System",
		"PayloadContent":     []any{inner},
	}, "\t")
}
