// Package mdmtest simulates Macs that speak Apple's MDM protocol.
//
// A [Device] enrolls with a (signed or unsigned) enrollment profile, gets its
// identity over SCEP, sends check-in messages signed with an Mdm-Signature
// header, and answers commands on the command channel the way macOS does,
// including a clock-driven software update life cycle (scan, download,
// install, restart, new OS version). A [Fleet] drives thousands of devices
// for load tests.
//
// The simulator is written against Apple's protocol, not against any one
// server, so it can be pointed at independent MDM servers too.
//
// Typical use:
//
//	d, _ := mdmtest.New(mdmtest.WithOS("15.3.1", "24D70"),
//		mdmtest.WithCatalog(mdmtest.MinorUpdate("15.4", "24E248")))
//	if err := d.Enroll(ctx, client, "https://mdm.example.com/mdm/enroll"); err != nil { ... }
//	sess, err := d.Connect(ctx) // answers queued commands until the server has none
//
// Time comes from an injected Clock, so a test can advance a fake clock
// through a download, an install and the restart into the new version.
package mdmtest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Clock tells the time. Inject a fake one to drive software update timelines.
type Clock interface {
	Now() time.Time
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// ErrOffline is returned by network operations while the simulated Mac is
// offline or restarting.
var ErrOffline = errors.New("mdmtest: device is offline")

// ErrNotEnrolled is returned by check-in and connect calls before Enroll succeeded.
var ErrNotEnrolled = errors.New("mdmtest: device is not enrolled")

// Hardware describes a Mac model.
type Hardware struct {
	ProductName            string // model identifier, e.g. "Mac14,2"
	ModelName              string // marketing name, e.g. "MacBook Air"
	SoftwareUpdateDeviceID string // board ID used by gdmf, e.g. "J413AP"
	IsAppleSilicon         bool
}

// KnownHardware is the set of models New picks from when no hardware is given.
var KnownHardware = []Hardware{
	{ProductName: "Mac14,2", ModelName: "MacBook Air", SoftwareUpdateDeviceID: "J413AP", IsAppleSilicon: true},
	{ProductName: "Mac14,7", ModelName: "MacBook Pro", SoftwareUpdateDeviceID: "J493AP", IsAppleSilicon: true},
	{ProductName: "Mac14,3", ModelName: "Mac mini", SoftwareUpdateDeviceID: "J473AP", IsAppleSilicon: true},
	{ProductName: "Mac15,12", ModelName: "MacBook Air", SoftwareUpdateDeviceID: "J613AP", IsAppleSilicon: true},
	{ProductName: "MacBookAir10,1", ModelName: "MacBook Air", SoftwareUpdateDeviceID: "J313AP", IsAppleSilicon: true},
	{ProductName: "Macmini9,1", ModelName: "Mac mini", SoftwareUpdateDeviceID: "J274AP", IsAppleSilicon: true},
	{ProductName: "iMac21,1", ModelName: "iMac", SoftwareUpdateDeviceID: "J456AP", IsAppleSilicon: true},
	{ProductName: "MacBookPro16,1", ModelName: "MacBook Pro", SoftwareUpdateDeviceID: "J152FAP", IsAppleSilicon: false},
	{ProductName: "iMac20,1", ModelName: "iMac", SoftwareUpdateDeviceID: "J185AP", IsAppleSilicon: false},
}

// Default OS of a new simulated Mac.
const (
	DefaultOSVersion    = "15.3.1"
	DefaultBuildVersion = "24D70"
)

// Device is one simulated Mac. Create it with New. All methods are safe for
// concurrent use; the exported identity fields are set by New and must not
// be changed afterwards. The OS version changes when an update installs, so it
// is read through methods (OSVersion, BuildVersion, ...).
type Device struct {
	UDID                   string  // uppercase UUID
	SerialNumber           string  // e.g. "C7QH2XJ4LN"
	DeviceName             string  // user-visible name
	ProductName            string  // model identifier, e.g. "Mac14,2"
	Model                  string  // model, as macOS reports it (the model identifier)
	ModelName              string  // e.g. "MacBook Air"
	SoftwareUpdateDeviceID string  // board ID, e.g. "J413AP"
	IsSupervised           bool    // supervised (ADE) Mac
	IsAppleSilicon         bool    // Apple silicon Mac
	DeviceCapacity         float64 // total capacity in GB
	Token                  []byte  // APNs push token, 32 bytes
	PushMagic              string  // push magic, an uppercase UUID
	BootstrapToken         []byte  // bootstrap token sent by SetBootstrapToken
	WiFiMAC                string
	BluetoothMAC           string

	clock    Clock
	log      *slog.Logger
	client   *http.Client
	pool     *KeyPool
	key      *rsa.PrivateKey
	sha1     bool
	sigReuse *sigCache // WithSignatureReuse
	roots    *x509.CertPool
	rec      Recorder

	maxCommands int
	handlers    map[string]Handler
	timings     Timings

	connMu sync.Mutex // one command-channel session at a time

	mu         sync.Mutex
	os         osState
	noOS       bool
	available  float64 // available capacity in GB
	enrollment *Enrollment
	catalog    []Update
	scan       scanState
	jobs       []*updateJob
	failure    string // forced ScheduleOSUpdate status
	overrides  []override
	held       *CommandResult // a deferred report (DeferReport)
	offline    bool
	downUntil  time.Time
	profiles   map[string][]byte
	ddm        ddmState     // declarative management (ddm.go)
	mis        misbehaviour // misbehave.go
	ade        adeState     // Automated Device Enrollment (ade.go)
}

type osState struct {
	version, build, suppBuild, suppExtra string
}

// Option configures a Device in New.
type Option func(*Device) error

// New returns a simulated Mac with random identity (UDID, serial number,
// model, push token and magic, bootstrap token) and the given options applied.
func New(opts ...Option) (*Device, error) {
	hw := KnownHardware[mrand.IntN(len(KnownHardware))]
	total := []float64{245.11, 494.38, 994.66}[mrand.IntN(3)]
	serial := randomSerial()
	d := &Device{
		UDID:                   randomUUID(),
		SerialNumber:           serial,
		ProductName:            hw.ProductName,
		Model:                  hw.ProductName,
		ModelName:              hw.ModelName,
		SoftwareUpdateDeviceID: hw.SoftwareUpdateDeviceID,
		IsAppleSilicon:         hw.IsAppleSilicon,
		IsSupervised:           true,
		DeviceCapacity:         total,
		Token:                  randomBytes(32),
		PushMagic:              randomUUID(),
		BootstrapToken:         randomBytes(64),
		WiFiMAC:                randomMAC(),
		BluetoothMAC:           randomMAC(),
		clock:                  realClock{},
		log:                    slog.New(slog.DiscardHandler),
		client:                 http.DefaultClient,
		maxCommands:            1000,
		timings:                DefaultTimings(),
		os:                     osState{version: DefaultOSVersion, build: DefaultBuildVersion, suppBuild: DefaultBuildVersion},
		available:              roundGB(total * (0.2 + 0.6*mrand.Float64())),
		profiles:               make(map[string][]byte),
	}
	d.DeviceName = hw.ModelName + " (" + serial[len(serial)-4:] + ")"
	for _, opt := range opts {
		if err := opt(d); err != nil {
			return nil, fmt.Errorf("mdmtest: new device: %w", err)
		}
	}
	if d.scan.done {
		d.scanLocked(d.clock.Now(), true)
	}
	return d, nil
}

// WithUDID sets the UDID (it is upper-cased).
func WithUDID(udid string) Option {
	return func(d *Device) error {
		if udid == "" {
			return errors.New("empty udid")
		}
		d.UDID = strings.ToUpper(udid)
		return nil
	}
}

// WithSerialNumber sets the serial number.
func WithSerialNumber(serial string) Option {
	return func(d *Device) error {
		if serial == "" {
			return errors.New("empty serial number")
		}
		d.SerialNumber = serial
		return nil
	}
}

// WithDeviceName sets the device name.
func WithDeviceName(name string) Option {
	return func(d *Device) error { d.DeviceName = name; return nil }
}

// WithHardware sets the model.
func WithHardware(hw Hardware) Option {
	return func(d *Device) error {
		if hw.ProductName == "" {
			return errors.New("hardware without product name")
		}
		d.ProductName, d.Model, d.ModelName = hw.ProductName, hw.ProductName, hw.ModelName
		d.SoftwareUpdateDeviceID, d.IsAppleSilicon = hw.SoftwareUpdateDeviceID, hw.IsAppleSilicon
		return nil
	}
}

// WithOS sets the running macOS version and build. The supplemental build
// version is set to the same build, as macOS reports it without an RSR.
func WithOS(version, build string) Option {
	return func(d *Device) error {
		if _, err := parseVersion(version); err != nil {
			return err
		}
		if build == "" {
			return errors.New("empty build version")
		}
		d.os = osState{version: version, build: build, suppBuild: build}
		return nil
	}
}

// WithSupplemental sets a Rapid Security Response on top of the running OS,
// e.g. ("22F770820d", "(a)").
func WithSupplemental(build, extra string) Option {
	return func(d *Device) error { d.os.suppBuild, d.os.suppExtra = build, extra; return nil }
}

// WithoutOSVersion makes the device omit OSVersion (and BuildVersion) from its
// check-ins and DeviceInformation answers.
func WithoutOSVersion() Option {
	return func(d *Device) error { d.noOS = true; return nil }
}

// WithSupervised sets whether the Mac is supervised (default true).
func WithSupervised(supervised bool) Option {
	return func(d *Device) error { d.IsSupervised = supervised; return nil }
}

// WithCapacity sets total and available storage in GB.
func WithCapacity(totalGB, availableGB float64) Option {
	return func(d *Device) error {
		if totalGB <= 0 || availableGB < 0 || availableGB > totalGB {
			return fmt.Errorf("bad capacity %v/%v GB", availableGB, totalGB)
		}
		d.DeviceCapacity, d.available = totalGB, availableGB
		return nil
	}
}

// WithPushToken sets the APNs token and push magic.
func WithPushToken(token []byte, pushMagic string) Option {
	return func(d *Device) error {
		if len(token) == 0 || pushMagic == "" {
			return errors.New("empty push token or magic")
		}
		d.Token, d.PushMagic = token, pushMagic
		return nil
	}
}

// WithBootstrapToken sets the bootstrap token SetBootstrapToken escrows.
func WithBootstrapToken(tok []byte) Option {
	return func(d *Device) error { d.BootstrapToken = tok; return nil }
}

// WithClock injects the clock (default: the real clock).
func WithClock(c Clock) Option {
	return func(d *Device) error {
		if c == nil {
			return errors.New("nil clock")
		}
		d.clock = c
		return nil
	}
}

// WithLogger injects a logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(d *Device) error {
		if l == nil {
			return errors.New("nil logger")
		}
		d.log = l
		return nil
	}
}

// WithHTTPClient sets the client used by Connect and check-ins before Enroll
// is called (Enroll replaces it with its own argument).
func WithHTTPClient(c *http.Client) Option {
	return func(d *Device) error {
		if c == nil {
			return errors.New("nil http client")
		}
		d.client = c
		return nil
	}
}

// WithKeyPool takes the device key from p instead of the process-wide pool.
func WithKeyPool(p *KeyPool) Option {
	return func(d *Device) error {
		if p == nil {
			return errors.New("nil key pool")
		}
		d.pool = p
		return nil
	}
}

// WithKey sets the device key used for SCEP.
func WithKey(k *rsa.PrivateKey) Option {
	return func(d *Device) error {
		if k == nil {
			return errors.New("nil key")
		}
		d.key = k
		return nil
	}
}

// WithSHA1Signatures makes Mdm-Signature use a SHA-1 digest (default SHA-256),
// as older macOS versions do.
func WithSHA1Signatures() Option {
	return func(d *Device) error { d.sha1 = true; return nil }
}

// WithProfileRoots makes Enroll verify a signed profile's certificate chain
// against roots. Without it only the signature itself is checked.
func WithProfileRoots(roots *x509.CertPool) Option {
	return func(d *Device) error { d.roots = roots; return nil }
}

// WithRecorder receives the latency of every network operation.
func WithRecorder(r Recorder) Option {
	return func(d *Device) error { d.rec = r; return nil }
}

// WithMaxCommands bounds the commands answered in one Connect (default 1000);
// Connect fails when a server sends more.
func WithMaxCommands(n int) Option {
	return func(d *Device) error {
		if n < 1 {
			return fmt.Errorf("max commands %d < 1", n)
		}
		d.maxCommands = n
		return nil
	}
}

// WithCatalog sets the software updates the simulated catalog offers.
// Only updates newer than the running OS are offered.
func WithCatalog(updates ...Update) Option {
	return func(d *Device) error {
		for _, u := range updates {
			if err := u.validate(); err != nil {
				return err
			}
		}
		d.catalog = append([]Update(nil), updates...)
		return nil
	}
}

// WithScanCompleted marks a software update scan as done at creation time, so
// AvailableOSUpdates answers without a ScheduleOSUpdateScan first.
func WithScanCompleted() Option {
	return func(d *Device) error {
		d.scan = scanState{done: true}
		return nil
	}
}

// WithTimings sets how long downloads, installs and restarts take.
func WithTimings(t Timings) Option {
	return func(d *Device) error {
		if t.Download < 0 || t.Install < 0 || t.Restart < 0 {
			return errors.New("negative timing")
		}
		d.timings = t
		return nil
	}
}

// WithHandler replaces the built-in answer for one RequestType.
func WithHandler(requestType string, h Handler) Option {
	return func(d *Device) error {
		if requestType == "" || h == nil {
			return errors.New("handler needs a request type and a function")
		}
		if d.handlers == nil {
			d.handlers = make(map[string]Handler)
		}
		d.handlers[requestType] = h
		return nil
	}
}

// OSVersion returns the running macOS version, or "" for a device created
// WithoutOSVersion.
func (d *Device) OSVersion() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.advanceLocked(d.clock.Now())
	if d.noOS {
		return ""
	}
	return d.os.version
}

// BuildVersion returns the running build, or "" for a device created WithoutOSVersion.
func (d *Device) BuildVersion() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.advanceLocked(d.clock.Now())
	if d.noOS {
		return ""
	}
	return d.os.build
}

// SupplementalBuildVersion returns the supplemental (RSR) build version.
func (d *Device) SupplementalBuildVersion() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.advanceLocked(d.clock.Now())
	return d.os.suppBuild
}

// SupplementalOSVersionExtra returns the RSR extra version, e.g. "(a)", or "".
func (d *Device) SupplementalOSVersionExtra() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.advanceLocked(d.clock.Now())
	return d.os.suppExtra
}

// AvailableDeviceCapacity returns the free storage in GB.
func (d *Device) AvailableDeviceCapacity() float64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.available
}

// SetAvailableDeviceCapacity changes the free storage in GB (e.g. to provoke
// DownloadInsufficientSpace).
func (d *Device) SetAvailableDeviceCapacity(gb float64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.available = gb
}

// SetOffline takes the Mac off or back on the network. Offline devices fail
// check-ins and Connect with ErrOffline without touching the network.
func (d *Device) SetOffline(offline bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.offline = offline
}

// Restart simulates a reboot: the Mac is offline for Timings.Restart and
// forgets its last software update scan.
func (d *Device) Restart() {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.clock.Now()
	d.downUntil = now.Add(d.timings.Restart)
	d.scan = scanState{}
}

// Online reports whether the Mac can reach the network now.
func (d *Device) Online() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.clock.Now()
	d.advanceLocked(now)
	return !d.offline && !now.Before(d.downUntil)
}

// Enrollment returns what Enroll learned, or nil before enrollment.
func (d *Device) Enrollment() *Enrollment {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.enrollment == nil {
		return nil
	}
	e := *d.enrollment
	return &e
}

// PushTokenHex returns the APNs token hex-encoded, as used in APNs URLs.
func (d *Device) PushTokenHex() string { return hex.EncodeToString(d.Token) }

func (d *Device) deviceKey() *rsa.PrivateKey {
	if d.key != nil {
		return d.key
	}
	if d.pool != nil {
		return d.pool.Key()
	}
	return DefaultKeyPool().Key()
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand panics on failure)
	return b
}

func randomUUID() string {
	b := randomBytes(16)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := strings.ToUpper(hex.EncodeToString(b))
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// randomSerial returns a 10-character serial like the randomized ones Apple
// has used since 2021.
func randomSerial() string {
	const alphabet = "BCDFGHJKLMNPQRTVWXYZ0123456789"
	b := randomBytes(10)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func randomMAC() string {
	b := randomBytes(6)
	b[0] = b[0]&0xfc | 0x02 // locally administered, unicast
	parts := make([]string, 6)
	for i, x := range b {
		parts[i] = hex.EncodeToString([]byte{x})
	}
	return strings.Join(parts, ":")
}

func roundGB(f float64) float64 { return float64(int64(f*100)) / 100 }
