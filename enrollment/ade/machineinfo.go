// Package ade is Sundial's side of Automated Device Enrollment (Apple
// Business Manager): it verifies the Apple-signed MachineInfo a Mac posts
// to the enrollment URL during Setup Assistant, holds Macs below their
// group's minimum macOS there (HTTP 403 com.apple.softwareupdate.required),
// and answers with an enrollment profile whose SCEP challenge is bound to
// the Mac's UDID.
package ade

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/micromdm/plist"
	"github.com/smallstep/pkcs7"

	"github.com/sundial-mdm/sundial/certs"
)

// MaxMachineInfoSize caps the enrollment request body. A real one (plist,
// device certificate and Apple's intermediate) is about 5 KiB; the cap stays
// small because the pkcs7 BER decoder is quadratic on crafted input (see
// enrollment.MaxSCEPMessageSize).
const MaxMachineInfoSize = 32 << 10

// MachineInfo is what a Mac reports about itself in the ADE enrollment
// request (Apple's other/machineinfo.yaml).
type MachineInfo struct {
	UDID                        string `plist:"UDID"`
	Serial                      string `plist:"SERIAL"`
	Product                     string `plist:"PRODUCT"`
	Version                     string `plist:"VERSION"`    // build, e.g. "23A344"
	OSVersion                   string `plist:"OS_VERSION"` // macOS 14+, e.g. "14.0"
	SupplementalBuildVersion    string `plist:"SUPPLEMENTAL_BUILD_VERSION"`
	SupplementalOSVersionExtra  string `plist:"SUPPLEMENTAL_OS_VERSION_EXTRA"`
	Language                    string `plist:"LANGUAGE"`
	MDMCanRequestSoftwareUpdate bool   `plist:"MDM_CAN_REQUEST_SOFTWARE_UPDATE"`
	SoftwareUpdateDeviceID      string `plist:"SOFTWARE_UPDATE_DEVICE_ID"`
}

// Errors of Verify; the handler maps them to statuses.
var (
	// ErrMalformed: not a CMS SignedData with a MachineInfo plist (400).
	ErrMalformed = errors.New("malformed enrollment request")
	// ErrUntrusted: the signature or the signer's chain does not verify
	// against the configured Apple roots (403).
	ErrUntrusted = errors.New("enrollment request not signed by a trusted Apple device")
)

// Verifier checks enrollment requests against a set of Apple roots.
type Verifier struct {
	roots *x509.CertPool
}

// NewVerifier returns a Verifier trusting roots (in production Apple's Root
// CA; tests use their own). roots must not be empty.
func NewVerifier(roots []*x509.Certificate) (*Verifier, error) {
	if len(roots) == 0 {
		return nil, errors.New("ade: no trusted roots")
	}
	pool := x509.NewCertPool()
	for _, c := range roots {
		pool.AddCert(c)
	}
	return &Verifier{roots: pool}, nil
}

// Verify checks that body is a CMS SignedData whose content is a MachineInfo
// plist, signed by a device certificate that chains (through the
// certificates the message carries) to one of the roots at now, and returns
// the MachineInfo.
func (v *Verifier) Verify(body []byte, now time.Time) (*MachineInfo, error) {
	if len(body) == 0 {
		return nil, fmt.Errorf("%w: empty body", ErrMalformed)
	}
	p7, err := parse(body)
	if err != nil {
		return nil, fmt.Errorf("%w: not CMS signed data: %w", ErrMalformed, err)
	}
	if len(p7.Signers) != 1 {
		return nil, fmt.Errorf("%w: %d signers, want 1", ErrMalformed, len(p7.Signers))
	}
	if len(p7.Content) == 0 {
		return nil, fmt.Errorf("%w: no signed content", ErrMalformed)
	}
	signer := p7.GetOnlySigner()
	if signer == nil {
		return nil, fmt.Errorf("%w: signer certificate not included", ErrUntrusted)
	}
	if err := p7.Verify(); err != nil {
		return nil, fmt.Errorf("%w: signature: %w", ErrUntrusted, err)
	}
	inter := x509.NewCertPool()
	for _, c := range p7.Certificates {
		if c != signer {
			inter.AddCert(c)
		}
	}
	if _, err := signer.Verify(x509.VerifyOptions{
		Roots: v.roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return nil, fmt.Errorf("%w: chain: %w", ErrUntrusted, err)
	}
	return ParseMachineInfo(p7.Content)
}

// ParseMachineInfo decodes and checks a MachineInfo XML plist. Binary plists
// are refused (the plist library has no limits on its binary decoder).
func ParseMachineInfo(b []byte) (*MachineInfo, error) {
	if bytes.HasPrefix(b, []byte("bplist")) {
		return nil, fmt.Errorf("%w: binary property list", ErrMalformed)
	}
	var mi MachineInfo
	if err := plist.Unmarshal(b, &mi); err != nil {
		return nil, fmt.Errorf("%w: machine info: %w", ErrMalformed, err)
	}
	switch {
	case !certs.ValidUDID(mi.UDID):
		return nil, fmt.Errorf("%w: missing or invalid UDID", ErrMalformed)
	case mi.Serial == "" || len(mi.Serial) > 64:
		return nil, fmt.Errorf("%w: missing or invalid SERIAL", ErrMalformed)
	case len(mi.Product) > 64 || len(mi.Version) > 32 || len(mi.OSVersion) > 32 ||
		len(mi.SoftwareUpdateDeviceID) > 64 || len(mi.SupplementalBuildVersion) > 32 ||
		len(mi.SupplementalOSVersionExtra) > 32 || len(mi.Language) > 32:
		return nil, fmt.Errorf("%w: overlong field", ErrMalformed)
	}
	return &mi, nil
}

// parse calls pkcs7.Parse and turns a panic on hostile input into an error.
func parse(der []byte) (p7 *pkcs7.PKCS7, err error) {
	defer func() {
		if r := recover(); r != nil {
			p7, err = nil, fmt.Errorf("malformed CMS structure: %v", r)
		}
	}()
	return pkcs7.Parse(der)
}
