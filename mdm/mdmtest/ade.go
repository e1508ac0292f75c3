package mdmtest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/micromdm/plist"
	"github.com/smallstep/pkcs7"
)

// ContentTypeMachineInfo is the media type of the ADE enrollment request.
const ContentTypeMachineInfo = "application/pkcs7-signature"

// errorCodeSoftwareUpdateRequired is Apple's 403 code for "update first".
const errorCodeSoftwareUpdateRequired = "com.apple.softwareupdate.required"

// maxSetupUpdates bounds how often EnrollADE updates and retries.
const maxSetupUpdates = 3

// AppleDeviceCA stands in for Apple's device CA in tests: a root and an
// intermediate that issue the device identities Macs sign their
// MachineInfo with. Give Root to the server as its trusted Apple root.
type AppleDeviceCA struct {
	Root         *x509.Certificate
	Intermediate *x509.Certificate
	interKey     crypto.Signer

	mu     sync.Mutex
	serial int64
}

// NewAppleDeviceCA makes a test "Apple" root and device intermediate (ECDSA
// P-256, valid from an hour before now for ten years).
func NewAppleDeviceCA(now time.Time) (*AppleDeviceCA, error) {
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	interKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	nb, na := now.Add(-time.Hour), now.Add(10*365*24*time.Hour)
	rootTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mdmtest Apple Root CA"},
		NotBefore: nb, NotAfter: na, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		return nil, err
	}
	root, err := x509.ParseCertificate(rootDER)
	if err != nil {
		return nil, err
	}
	interTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "mdmtest Apple Device CA"},
		NotBefore: nb, NotAfter: na, IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	interDER, err := x509.CreateCertificate(rand.Reader, interTmpl, root, &interKey.PublicKey, rootKey)
	if err != nil {
		return nil, err
	}
	inter, err := x509.ParseCertificate(interDER)
	if err != nil {
		return nil, err
	}
	return &AppleDeviceCA{Root: root, Intermediate: inter, interKey: interKey, serial: 100}, nil
}

// IssueDevice issues a device identity for udid.
func (ca *AppleDeviceCA) IssueDevice(udid string, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	ca.mu.Lock()
	ca.serial++
	serial := ca.serial
	ca.mu.Unlock()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: udid},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(5 * 365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Intermediate, &key.PublicKey, ca.interKey)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

// adeState is the simulator's Setup Assistant state.
type adeState struct {
	awaiting     bool     // waiting in Setup Assistant for DeviceConfigured
	setupUpdates []string // versions installed because the server required them
}

// MachineInfo is the plist a Mac posts to the enrollment URL during Setup
// Assistant (Apple's other/machineinfo.yaml).
type MachineInfo struct {
	UDID                        string `plist:"UDID"`
	Serial                      string `plist:"SERIAL"`
	Product                     string `plist:"PRODUCT"`
	Version                     string `plist:"VERSION"`
	OSVersion                   string `plist:"OS_VERSION,omitempty"`
	SupplementalBuildVersion    string `plist:"SUPPLEMENTAL_BUILD_VERSION,omitempty"`
	SupplementalOSVersionExtra  string `plist:"SUPPLEMENTAL_OS_VERSION_EXTRA,omitempty"`
	Language                    string `plist:"LANGUAGE,omitempty"`
	MDMCanRequestSoftwareUpdate bool   `plist:"MDM_CAN_REQUEST_SOFTWARE_UPDATE,omitempty"`
	SoftwareUpdateDeviceID      string `plist:"SOFTWARE_UPDATE_DEVICE_ID,omitempty"`
}

// MachineInfo returns what this Mac reports at Setup Assistant now. macOS
// 14 and later add OS_VERSION and MDM_CAN_REQUEST_SOFTWARE_UPDATE; 14.4
// adds SOFTWARE_UPDATE_DEVICE_ID.
func (d *Device) MachineInfo() MachineInfo {
	d.mu.Lock()
	d.advanceLocked(d.clock.Now())
	os, noOS := d.os, d.noOS
	d.mu.Unlock()
	mi := MachineInfo{UDID: d.UDID, Serial: d.SerialNumber, Product: d.ProductName, Version: os.build, Language: "en"}
	v, err := parseVersion(os.version)
	if noOS || err != nil || v[0] < 14 {
		return mi
	}
	mi.OSVersion, mi.MDMCanRequestSoftwareUpdate = os.version, true
	mi.SupplementalBuildVersion, mi.SupplementalOSVersionExtra = os.suppBuild, os.suppExtra
	if v[0] > 14 || v[1] >= 4 {
		mi.SoftwareUpdateDeviceID = d.SoftwareUpdateDeviceID
	}
	return mi
}

// SignedMachineInfo returns the ADE enrollment request body: mi as an XML
// plist, CMS-signed (attached, SHA-256) with cert and key, carrying the
// intermediates given.
func SignedMachineInfo(mi MachineInfo, cert *x509.Certificate, key crypto.Signer, intermediates ...*x509.Certificate) ([]byte, error) {
	body, err := plist.MarshalIndent(mi, "\t")
	if err != nil {
		return nil, err
	}
	sd, err := pkcs7.NewSignedData(body)
	if err != nil {
		return nil, err
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if err := sd.AddSignerChain(cert, key, intermediates, pkcs7.SignerInfoConfig{}); err != nil {
		return nil, err
	}
	return sd.Finish()
}

// SetupUpdateError is returned by EnrollADE when the server keeps requiring
// an update the Mac cannot install.
type SetupUpdateError struct{ OSVersion, BuildVersion string }

func (e *SetupUpdateError) Error() string {
	return fmt.Sprintf("mdmtest: server requires macOS %s %s at setup assistant", e.OSVersion, e.BuildVersion)
}

// EnrollADE enrolls the way a Mac assigned in Apple Business Manager does
// during Setup Assistant: it posts its MachineInfo, signed with a device
// identity from ca, to enrollURL. On HTTP 403 com.apple.softwareupdate.required
// it installs the required version (from its catalog, or as named by the
// server) and retries; on 200 it installs the profile and sends
// TokenUpdate with AwaitingConfiguration, then waits for DeviceConfigured
// (answer commands with Connect). The Mac is supervised.
func (d *Device) EnrollADE(ctx context.Context, c *http.Client, enrollURL string, ca *AppleDeviceCA) error {
	if c == nil || ca == nil {
		return errors.New("mdmtest: enroll ade: nil http client or ca")
	}
	cert, key, err := ca.IssueDevice(d.UDID, d.clock.Now())
	if err != nil {
		return fmt.Errorf("mdmtest: enroll ade: device identity: %w", err)
	}
	for attempt := 0; ; attempt++ {
		body, err := SignedMachineInfo(d.MachineInfo(), cert, key, ca.Intermediate)
		if err != nil {
			return fmt.Errorf("mdmtest: enroll ade: sign machine info: %w", err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, enrollURL, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("mdmtest: enroll ade: %w", err)
		}
		req.Header.Set("Content-Type", ContentTypeMachineInfo)
		resp, answer, err := d.do(c, req, "enroll.ade")
		var he *HTTPError
		if errors.As(err, &he) && he.StatusCode == http.StatusForbidden && resp != nil &&
			strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			var ur struct {
				Code    string `json:"code"`
				Details struct{ OSVersion, BuildVersion string }
			}
			if json.Unmarshal(he.Body, &ur) != nil || ur.Code != errorCodeSoftwareUpdateRequired {
				return fmt.Errorf("mdmtest: enroll ade: %w", err)
			}
			if attempt >= maxSetupUpdates {
				return &SetupUpdateError{ur.Details.OSVersion, ur.Details.BuildVersion}
			}
			if err := d.setupUpdate(ur.Details.OSVersion, ur.Details.BuildVersion); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("mdmtest: enroll ade: %w", err)
		}
		d.mu.Lock()
		d.IsSupervised = true
		d.ade.awaiting = true
		d.mu.Unlock()
		return d.installEnrollmentProfile(ctx, c, answer, true)
	}
}

// setupUpdate installs version at Setup Assistant, as a Mac does after the
// 403: the build comes from the catalog, else from the server's answer.
func (d *Device) setupUpdate(version, build string) error {
	if _, err := parseVersion(version); err != nil {
		return fmt.Errorf("mdmtest: enroll ade: server requires bad version %q", version)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, u := range d.catalog {
		if u.Version == version && u.SupplementalBuildVersion == "" {
			build = u.Build
		}
	}
	if build == "" {
		return &SetupUpdateError{OSVersion: version}
	}
	d.os = osState{version: version, build: build, suppBuild: build}
	d.ade.setupUpdates = append(d.ade.setupUpdates, version)
	return nil
}

// AwaitingConfiguration reports whether the Mac waits in Setup Assistant
// for DeviceConfigured.
func (d *Device) AwaitingConfiguration() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ade.awaiting
}

// SetupUpdates lists the versions the Mac installed at Setup Assistant
// because the server required them.
func (d *Device) SetupUpdates() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.ade.setupUpdates...)
}

// deviceConfigured releases the Mac from Setup Assistant. A Mac that is not
// waiting refuses it; the error chain is synthetic (Apple's exact code was
// not found).
func (d *Device) deviceConfigured() Result {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.ade.awaiting {
		return Result{Status: StatusError, ErrorChain: []ErrorChainItem{{
			ErrorCode: 12078, ErrorDomain: "MCMDMErrorDomain",
			LocalizedDescription: "The device is not awaiting configuration.",
		}}}
	}
	d.ade.awaiting = false
	return Result{Status: StatusAcknowledged}
}
