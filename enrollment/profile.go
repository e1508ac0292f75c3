package enrollment

import (
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/micromdm/plist"
)

// URL paths the server mounts the enrollment endpoints and the MDM endpoints on.
// The profile points devices at PublicURL joined with these paths.
const (
	PathEnroll  = "/mdm/enroll"
	PathSCEP    = "/scep"
	PathConnect = "/mdm/connect"
	PathCheckIn = "/mdm/checkin"
)

// Fixed values of the enrollment profile.
const (
	// TopicPrefix starts every MDM push topic (the UID of Apple's MDM push certificate).
	TopicPrefix = "com.apple.mgmt."
	// DefaultOrganization is the PayloadOrganization and SCEP subject O when none is configured.
	DefaultOrganization = "Sundial"
	// DefaultIdentifier is the top-level PayloadIdentifier when none is configured.
	DefaultIdentifier = "com.github.sundial-mdm.enrollment"
	// AccessRights grants every MDM right (the usual value for a full MDM).
	AccessRights = 8191
	// ProfileDisplayName is the name the user sees in System Settings.
	ProfileDisplayName = "Sundial MDM enrollment"
	// DeviceIdentityCommonName is the CN the device asks for in its SCEP request.
	DeviceIdentityCommonName = "Sundial device identity"

	scepKeySize  = 2048
	scepKeyUsage = 5 // 1 signing | 4 encryption
	maxChallenge = 1024
)

// Payload types used in the profile.
const (
	PayloadTypeConfiguration = "Configuration"
	PayloadTypeRoot          = "com.apple.security.root"
	PayloadTypeSCEP          = "com.apple.security.scep"
	PayloadTypeMDM           = "com.apple.mdm"
)

// ServerCapabilities lists what the server announces in the com.apple.mdm payload.
// per-user-connections must be present for macOS and can never change on update.
var ServerCapabilities = []string{
	"com.apple.mdm.per-user-connections",
	"com.apple.mdm.bootstraptoken",
}

// ProfileConfig is the input of [BuildProfile].
type ProfileConfig struct {
	// PublicURL is the externally reachable base URL of the server, for
	// example "https://mdm.example.org". It may carry a path prefix. The
	// profile points at PublicURL + PathSCEP, PathConnect and PathCheckIn.
	PublicURL string
	// Topic is the APNs push topic, the UID of the MDM push certificate.
	Topic string
	// Challenge is the SCEP challenge password the device presents.
	Challenge string
	// CACert is Sundial's CA certificate, which the device will trust.
	CACert *x509.Certificate
	// Organization is shown as PayloadOrganization and used as the O of the
	// identity subject. Empty means DefaultOrganization.
	Organization string
	// Identifier is the top-level PayloadIdentifier (reverse DNS). Payloads
	// inside use it as a prefix. Empty means DefaultIdentifier.
	Identifier string
	// UseDevelopmentAPNS makes the device use the APNs sandbox. Certificates
	// from identity.apple.com are production only.
	UseDevelopmentAPNS bool
	// AllowInsecureURL accepts an http:// PublicURL. For tests and local
	// development only: macOS refuses a non-https ServerURL.
	AllowInsecureURL bool
	// AllowAnyTopic skips the TopicPrefix check. For tests only.
	AllowAnyTopic bool
}

// withDefaults returns c with empty optional fields filled in.
func (c ProfileConfig) withDefaults() ProfileConfig {
	if c.Organization == "" {
		c.Organization = DefaultOrganization
	}
	if c.Identifier == "" {
		c.Identifier = DefaultIdentifier
	}
	return c
}

// validateServer checks the fields that do not change per request: the URL,
// the CA and the identifiers.
func (c ProfileConfig) validateServer() error {
	if c.PublicURL == "" {
		return errors.New("public url is empty")
	}
	u, err := url.Parse(c.PublicURL)
	if err != nil {
		return fmt.Errorf("parse public url: %w", err)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && c.AllowInsecureURL:
	case u.Scheme == "http":
		return fmt.Errorf("public url %q: devices require https", c.PublicURL)
	default:
		return fmt.Errorf("public url %q: scheme must be https", c.PublicURL)
	}
	if u.Host == "" {
		return fmt.Errorf("public url %q: missing host", c.PublicURL)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return fmt.Errorf("public url %q: must not carry user info, query or fragment", c.PublicURL)
	}
	if c.CACert == nil {
		return errors.New("ca certificate is missing")
	}
	if !c.CACert.IsCA {
		return errors.New("ca certificate is not a ca")
	}
	if strings.ContainsAny(c.Organization, "\x00") || strings.ContainsAny(c.Identifier, "\x00 ") {
		return errors.New("organization or identifier contains invalid characters")
	}
	return nil
}

// Validate reports whether c can produce a profile a Mac will accept.
func (c ProfileConfig) Validate() error {
	c = c.withDefaults()
	if err := c.validateServer(); err != nil {
		return err
	}
	return validateRequestInputs(c.Topic, c.Challenge, c.AllowAnyTopic)
}

// validateRequestInputs checks the fields that may change between requests.
func validateRequestInputs(topic, challenge string, anyTopic bool) error {
	if topic == "" {
		return errors.New("push topic is empty")
	}
	if !anyTopic && (!strings.HasPrefix(topic, TopicPrefix) || len(topic) == len(TopicPrefix)) {
		return fmt.Errorf("push topic %q: must start with %q", topic, TopicPrefix)
	}
	if strings.ContainsAny(topic, " \t\r\n\x00") {
		return fmt.Errorf("push topic %q: contains whitespace", topic)
	}
	if challenge == "" {
		return errors.New("scep challenge is empty")
	}
	if len(challenge) > maxChallenge || strings.ContainsAny(challenge, "\x00") {
		return errors.New("scep challenge is too long or contains nul")
	}
	return nil
}

// endpoints returns the SCEP, server and check-in URLs under PublicURL.
func (c ProfileConfig) endpoints() (scepURL, serverURL, checkInURL string, err error) {
	base := strings.TrimSuffix(c.PublicURL, "/")
	if scepURL, err = url.JoinPath(base, PathSCEP); err != nil {
		return "", "", "", fmt.Errorf("join scep url: %w", err)
	}
	if serverURL, err = url.JoinPath(base, PathConnect); err != nil {
		return "", "", "", fmt.Errorf("join server url: %w", err)
	}
	if checkInURL, err = url.JoinPath(base, PathCheckIn); err != nil {
		return "", "", "", fmt.Errorf("join check-in url: %w", err)
	}
	return scepURL, serverURL, checkInURL, nil
}

// payloadHeader holds the keys every payload carries.
type payloadHeader struct {
	PayloadType        string `plist:"PayloadType"`
	PayloadVersion     int    `plist:"PayloadVersion"`
	PayloadIdentifier  string `plist:"PayloadIdentifier"`
	PayloadUUID        string `plist:"PayloadUUID"`
	PayloadDisplayName string `plist:"PayloadDisplayName"`
}

type topLevelPayload struct {
	PayloadContent           []any  `plist:"PayloadContent"`
	PayloadDescription       string `plist:"PayloadDescription"`
	PayloadDisplayName       string `plist:"PayloadDisplayName"`
	PayloadIdentifier        string `plist:"PayloadIdentifier"`
	PayloadOrganization      string `plist:"PayloadOrganization"`
	PayloadRemovalDisallowed bool   `plist:"PayloadRemovalDisallowed"`
	PayloadScope             string `plist:"PayloadScope"`
	PayloadType              string `plist:"PayloadType"`
	PayloadUUID              string `plist:"PayloadUUID"`
	PayloadVersion           int    `plist:"PayloadVersion"`
}

type rootPayload struct {
	payloadHeader
	PayloadCertificateFileName string `plist:"PayloadCertificateFileName"`
	PayloadContent             []byte `plist:"PayloadContent"`
}

type scepContent struct {
	URL       string       `plist:"URL"`
	Name      string       `plist:"Name"`
	Subject   [][][]string `plist:"Subject"`
	Challenge string       `plist:"Challenge"`
	Keysize   int          `plist:"Keysize"`
	KeyType   string       `plist:"Key Type"`
	KeyUsage  int          `plist:"Key Usage"`
}

type scepPayload struct {
	payloadHeader
	PayloadContent scepContent `plist:"PayloadContent"`
}

type mdmPayload struct {
	payloadHeader
	IdentityCertificateUUID string   `plist:"IdentityCertificateUUID"`
	Topic                   string   `plist:"Topic"`
	ServerURL               string   `plist:"ServerURL"`
	CheckInURL              string   `plist:"CheckInURL"`
	SignMessage             bool     `plist:"SignMessage"`
	AccessRights            int      `plist:"AccessRights"`
	CheckOutWhenRemoved     bool     `plist:"CheckOutWhenRemoved"`
	ServerCapabilities      []string `plist:"ServerCapabilities"`
	UseDevelopmentAPNS      bool     `plist:"UseDevelopmentAPNS"`
}

// BuildProfile renders the unsigned enrollment profile (an XML plist) for cfg.
// The payload UUIDs are derived from the server URL and the topic, so the same
// server always produces the same UUIDs and a re-installed profile replaces
// the old one instead of adding a second.
func BuildProfile(cfg ProfileConfig) ([]byte, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid profile config: %w", err)
	}
	scepURL, serverURL, checkInURL, err := cfg.endpoints()
	if err != nil {
		return nil, err
	}
	id := func(kind string) string {
		return nameUUID(urlNamespace, "sundial:enrollment\n"+serverURL+"\n"+cfg.Topic+"\n"+kind)
	}
	scepUUID := id("scep")

	root := rootPayload{
		payloadHeader: payloadHeader{
			PayloadType:        PayloadTypeRoot,
			PayloadVersion:     1,
			PayloadIdentifier:  cfg.Identifier + ".ca",
			PayloadUUID:        id("ca"),
			PayloadDisplayName: cfg.Organization + " CA",
		},
		PayloadCertificateFileName: "sundial-ca.cer",
		PayloadContent:             cfg.CACert.Raw,
	}
	identity := scepPayload{
		payloadHeader: payloadHeader{
			PayloadType:        PayloadTypeSCEP,
			PayloadVersion:     1,
			PayloadIdentifier:  cfg.Identifier + ".scep",
			PayloadUUID:        scepUUID,
			PayloadDisplayName: DeviceIdentityCommonName,
		},
		PayloadContent: scepContent{
			URL:  scepURL,
			Name: cfg.Organization,
			Subject: [][][]string{
				{{"O", cfg.Organization}},
				{{"CN", DeviceIdentityCommonName}},
			},
			Challenge: cfg.Challenge,
			Keysize:   scepKeySize,
			KeyType:   "RSA",
			KeyUsage:  scepKeyUsage,
		},
	}
	mdm := mdmPayload{
		payloadHeader: payloadHeader{
			PayloadType:        PayloadTypeMDM,
			PayloadVersion:     1,
			PayloadIdentifier:  cfg.Identifier + ".mdm",
			PayloadUUID:        id("mdm"),
			PayloadDisplayName: cfg.Organization + " MDM",
		},
		IdentityCertificateUUID: scepUUID,
		Topic:                   cfg.Topic,
		ServerURL:               serverURL,
		CheckInURL:              checkInURL,
		SignMessage:             true,
		AccessRights:            AccessRights,
		CheckOutWhenRemoved:     true,
		ServerCapabilities:      append([]string(nil), ServerCapabilities...),
		UseDevelopmentAPNS:      cfg.UseDevelopmentAPNS,
	}
	top := topLevelPayload{
		PayloadContent:           []any{root, identity, mdm},
		PayloadDescription:       "Enrolls this Mac in " + cfg.Organization + " device management, which keeps macOS up to date.",
		PayloadDisplayName:       ProfileDisplayName,
		PayloadIdentifier:        cfg.Identifier,
		PayloadOrganization:      cfg.Organization,
		PayloadRemovalDisallowed: false,
		PayloadScope:             "System",
		PayloadType:              PayloadTypeConfiguration,
		PayloadUUID:              id("profile"),
		PayloadVersion:           1,
	}
	out, err := plist.MarshalIndent(top, "\t")
	if err != nil {
		return nil, fmt.Errorf("encode profile: %w", err)
	}
	return out, nil
}

// urlNamespace is the RFC 9562 namespace for URL names.
var urlNamespace = [16]byte{0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}

// nameUUID returns the uppercase name-based (version 5, SHA-1) UUID of name in ns.
func nameUUID(ns [16]byte, name string) string {
	h := sha1.New()
	h.Write(ns[:])
	h.Write([]byte(name))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:36], u[10:16])
	return strings.ToUpper(string(b[:]))
}
