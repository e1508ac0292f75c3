package mdmtest

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"

	"github.com/micromdm/plist"
	"github.com/smallstep/pkcs7"
)

// Payload types the simulator understands.
const (
	PayloadTypeSCEP   = "com.apple.security.scep"
	PayloadTypePKCS12 = "com.apple.security.pkcs12"
	PayloadTypeMDM    = "com.apple.mdm"
)

// Profile is the part of an enrollment profile the simulator uses.
type Profile struct {
	Identifier string
	Signed     bool                // the profile came as CMS SignedData
	Signer     *x509.Certificate   // signer certificate of a signed profile
	SCEP       *SCEPPayload        // the SCEP identity payload, if any
	PKCS12     *PKCS12Payload      // the PKCS#12 identity payload, if any
	MDM        MDMPayload          // the com.apple.mdm payload
	Payloads   []PayloadDescriptor // every payload, in order
}

// PayloadDescriptor names one payload of a profile.
type PayloadDescriptor struct {
	Type, UUID, Identifier string
}

// SCEPPayload is the content of a com.apple.security.scep payload.
type SCEPPayload struct {
	UUID          string
	URL           string
	Name          string
	Subject       pkix.Name
	Challenge     string
	Keysize       int
	KeyType       string
	KeyUsage      int
	CAFingerprint []byte
}

// PKCS12Payload is the content of a com.apple.security.pkcs12 payload.
type PKCS12Payload struct {
	UUID     string
	Data     []byte
	Password string
}

// MDMPayload is the content of a com.apple.mdm payload.
type MDMPayload struct {
	UUID                    string
	ServerURL               string
	CheckInURL              string // defaults to ServerURL
	Topic                   string
	SignMessage             bool
	IdentityCertificateUUID string
	AccessRights            int
	CheckOutWhenRemoved     bool
	ServerCapabilities      []string
}

// HasCapability reports whether ServerCapabilities lists c.
func (m MDMPayload) HasCapability(c string) bool {
	for _, x := range m.ServerCapabilities {
		if x == c {
			return true
		}
	}
	return false
}

// rawPayload decodes any payload; its PayloadContent differs per type, so
// it is decoded per type in UnmarshalPlist.
type rawPayload struct {
	hdr struct {
		PayloadType       string
		PayloadUUID       string
		PayloadIdentifier string
	}
	scep   *SCEPPayload
	pkcs12 *PKCS12Payload
	mdm    *MDMPayload
}

// UnmarshalPlist decodes the payload header, then the content for its type.
func (p *rawPayload) UnmarshalPlist(f func(any) error) error {
	if err := f(&p.hdr); err != nil {
		return err
	}
	switch p.hdr.PayloadType {
	case PayloadTypeSCEP:
		var v struct {
			PayloadContent struct {
				URL           string
				Name          string
				Subject       [][][]string
				Challenge     string
				Keysize       int
				KeyType       string `plist:"Key Type"`
				KeyUsage      int    `plist:"Key Usage"`
				CAFingerprint []byte
			}
		}
		if err := f(&v); err != nil {
			return fmt.Errorf("scep payload: %w", err)
		}
		c := v.PayloadContent
		subj, err := parseSubject(c.Subject)
		if err != nil {
			return fmt.Errorf("scep payload subject: %w", err)
		}
		p.scep = &SCEPPayload{
			UUID: p.hdr.PayloadUUID, URL: c.URL, Name: c.Name, Subject: subj,
			Challenge: c.Challenge, Keysize: c.Keysize, KeyType: c.KeyType,
			KeyUsage: c.KeyUsage, CAFingerprint: c.CAFingerprint,
		}
	case PayloadTypePKCS12:
		var v struct {
			PayloadContent []byte
			Password       string
		}
		if err := f(&v); err != nil {
			return fmt.Errorf("pkcs12 payload: %w", err)
		}
		p.pkcs12 = &PKCS12Payload{UUID: p.hdr.PayloadUUID, Data: v.PayloadContent, Password: v.Password}
	case PayloadTypeMDM:
		var v MDMPayload
		if err := f(&v); err != nil {
			return fmt.Errorf("mdm payload: %w", err)
		}
		v.UUID = p.hdr.PayloadUUID
		p.mdm = &v
	}
	return nil
}

var subjectOIDs = map[string]asn1.ObjectIdentifier{
	"C":   {2, 5, 4, 6},
	"O":   {2, 5, 4, 10},
	"OU":  {2, 5, 4, 11},
	"CN":  {2, 5, 4, 3},
	"L":   {2, 5, 4, 7},
	"ST":  {2, 5, 4, 8},
	"UID": {0, 9, 2342, 19200300, 100, 1, 1},
}

// parseSubject turns Apple's [[["O","Example"]],[["CN","device"]]] into a name.
func parseSubject(rdns [][][]string) (pkix.Name, error) {
	var name pkix.Name
	for _, rdn := range rdns {
		for _, pair := range rdn {
			if len(pair) != 2 {
				return name, fmt.Errorf("subject entry has %d elements, want 2", len(pair))
			}
			oid, ok := subjectOIDs[strings.ToUpper(pair[0])]
			if !ok {
				var err error
				if oid, err = parseOID(pair[0]); err != nil {
					return name, fmt.Errorf("subject attribute %q: %w", pair[0], err)
				}
			}
			name.ExtraNames = append(name.ExtraNames, pkix.AttributeTypeAndValue{Type: oid, Value: pair[1]})
		}
	}
	return name, nil
}

func parseOID(s string) (asn1.ObjectIdentifier, error) {
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return nil, errors.New("not an OID")
	}
	oid := make(asn1.ObjectIdentifier, len(parts))
	for i, p := range parts {
		n := 0
		if p == "" || len(p) > 9 {
			return nil, errors.New("not an OID")
		}
		for _, c := range p {
			if c < '0' || c > '9' {
				return nil, errors.New("not an OID")
			}
			n = n*10 + int(c-'0')
		}
		oid[i] = n
	}
	return oid, nil
}

// ParseProfile decodes an enrollment profile: CMS SignedData with the plist
// attached (the signature is verified; its chain too when roots is not nil),
// or a bare XML plist. It requires exactly one com.apple.mdm payload whose
// IdentityCertificateUUID names a SCEP or PKCS#12 payload of the profile.
func ParseProfile(data []byte, roots *x509.CertPool) (*Profile, error) {
	prof := &Profile{}
	body := bytes.TrimLeft(data, " \t\r\n\ufeff")
	if !bytes.HasPrefix(body, []byte("<")) && !bytes.HasPrefix(body, []byte("bplist")) {
		p7, err := pkcs7.Parse(data)
		if err != nil {
			return nil, fmt.Errorf("parse signed profile: %w", err)
		}
		if roots != nil {
			err = p7.VerifyWithChain(roots)
		} else {
			err = p7.Verify()
		}
		if err != nil {
			return nil, fmt.Errorf("verify profile signature: %w", err)
		}
		prof.Signed, prof.Signer = true, p7.GetOnlySigner()
		body = p7.Content
	} else if roots != nil {
		return nil, errors.New("profile is not signed")
	}
	var top struct {
		PayloadType       string
		PayloadIdentifier string
		PayloadContent    []rawPayload
	}
	if err := plist.Unmarshal(body, &top); err != nil {
		return nil, fmt.Errorf("decode profile: %w", err)
	}
	if top.PayloadType != "Configuration" {
		return nil, fmt.Errorf("profile PayloadType %q, want Configuration", top.PayloadType)
	}
	prof.Identifier = top.PayloadIdentifier
	var mdms int
	ids := make(map[string]*rawPayload)
	for i := range top.PayloadContent {
		p := &top.PayloadContent[i]
		prof.Payloads = append(prof.Payloads, PayloadDescriptor{Type: p.hdr.PayloadType, UUID: p.hdr.PayloadUUID, Identifier: p.hdr.PayloadIdentifier})
		ids[p.hdr.PayloadUUID] = p
		if p.mdm != nil {
			mdms++
			prof.MDM = *p.mdm
		}
	}
	if mdms != 1 {
		return nil, fmt.Errorf("profile has %d %s payloads, want 1", mdms, PayloadTypeMDM)
	}
	m := &prof.MDM
	if !strings.HasPrefix(m.ServerURL, "https://") && !strings.HasPrefix(m.ServerURL, "http://") {
		return nil, fmt.Errorf("mdm payload ServerURL %q is not an http(s) URL", m.ServerURL)
	}
	if m.CheckInURL == "" {
		m.CheckInURL = m.ServerURL
	}
	if m.Topic == "" {
		return nil, errors.New("mdm payload has no Topic")
	}
	id, ok := ids[m.IdentityCertificateUUID]
	if m.IdentityCertificateUUID == "" || !ok {
		return nil, fmt.Errorf("mdm payload IdentityCertificateUUID %q matches no payload", m.IdentityCertificateUUID)
	}
	switch {
	case id.scep != nil:
		if id.scep.URL == "" {
			return nil, errors.New("scep payload has no URL")
		}
		prof.SCEP = id.scep
	case id.pkcs12 != nil:
		prof.PKCS12 = id.pkcs12
	default:
		return nil, fmt.Errorf("identity payload %q has unsupported type %q", m.IdentityCertificateUUID, id.hdr.PayloadType)
	}
	return prof, nil
}
