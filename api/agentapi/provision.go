package agentapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/micromdm/plist"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/storage"
)

// PreferenceDomain is the managed-preferences domain of the agent's settings:
// macOS writes them to /Library/Managed Preferences/<domain>.plist.
const PreferenceDomain = "com.sundial-mdm.agent"

// Settings is what the agent reads from its managed preferences.
type Settings struct {
	ServerURL    string `plist:"ServerURL"`
	EnrollmentID string `plist:"EnrollmentID"`
	Secret       string `plist:"Secret"`
	// CACertificate (PEM) is the only CA the agent trusts for ServerURL;
	// empty means the system roots (a server with a public certificate).
	CACertificate string `plist:"CACertificate,omitempty"`
}

// SecretStore reads agent secrets and sets a new one together with the
// command that carries it (storage.AgentStore).
type SecretStore interface {
	AgentSecretHash(ctx context.Context, id string) (string, error)
	// ProvisionAgent sets the device's secret hash and queues cmd in one
	// transaction: both or neither.
	ProvisionAgent(ctx context.Context, id, hash string, cmd *mdm.Command, now time.Time) error
}

// CommandSealer returns the stored form of a command that carries a
// secret, its body sealed so that neither the admin API nor a backup shows
// it (service.Service.SealCommand).
type CommandSealer interface {
	SealCommand(cmd *mdm.Command) (*mdm.Command, error)
}

// Notifier wakes devices that have a new command (a push).
type Notifier interface{ Notify(ids ...string) }

// Provisioner gives each enrolled Mac an agent secret and installs the
// agent's settings profile through MDM.
type Provisioner struct {
	store     SecretStore
	sealer    CommandSealer
	notifier  Notifier
	clock     Clock
	log       *slog.Logger
	serverURL string
	caPEM     string
	tmpl      *profileTemplate         // nil: every profile through the encoder
	cmdTmpl   *mdm.DataCommandTemplate // nil: every command through the encoder
}

// NewProvisioner returns a Provisioner. caPEM may be empty (system roots).
func NewProvisioner(store SecretStore, sealer CommandSealer, notifier Notifier, clk Clock, log *slog.Logger, serverURL, caPEM string) *Provisioner {
	if store == nil || sealer == nil || notifier == nil || clk == nil {
		panic("agentapi.NewProvisioner: nil dependency")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// A template that cannot be built (a placeholder inside serverURL or
	// caPEM) only costs speed: profiles then go through the encoder.
	tmpl, _ := newProfileTemplate(serverURL, caPEM)
	cmdTmpl, _ := mdm.NewDataCommandTemplate("InstallProfile", "Payload")
	return &Provisioner{store: store, sealer: sealer, notifier: notifier, clock: clk, log: log,
		serverURL: serverURL, caPEM: caPEM, tmpl: tmpl, cmdTmpl: cmdTmpl}
}

// Checkin implements the MDM service's check-in hook: a device channel
// TokenUpdate of a Mac without an agent secret provisions one.
func (p *Provisioner) Checkin(ctx context.Context, id string, msg *mdm.CheckinMessage) {
	if msg.MessageType != mdm.TokenUpdate || msg.UserChannel() {
		return
	}
	if _, err := p.store.AgentSecretHash(ctx, id); !errors.Is(err, storage.ErrNotFound) {
		if err != nil {
			p.log.Error("agent secret lookup failed", "enrollment_id", id, "err", err)
		}
		return
	}
	if err := p.Provision(ctx, id); err != nil {
		p.log.Error("agent provisioning failed", "enrollment_id", id, "err", err)
	}
}

// Provision sets a fresh secret for the device (rotating any old one) and
// queues an InstallProfile carrying it, sealed, in the same transaction;
// then it pushes the device.
func (p *Provisioner) Provision(ctx context.Context, id string) error {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	secret := hex.EncodeToString(b)
	profile, err := p.profile(id, secret)
	if err != nil {
		return err
	}
	cmd, err := p.installProfile(profile)
	if err != nil {
		return err
	}
	stored, err := p.sealer.SealCommand(cmd)
	if err != nil {
		return err
	}
	// The secret and the profile carrying it are written together: a
	// secret without its profile, or a profile whose secret was not stored,
	// would lock the agent out.
	if err := p.store.ProvisionAgent(ctx, id, HashSecret(secret), stored, p.clock.Now()); err != nil {
		return fmt.Errorf("store agent secret and settings profile: %w", err)
	}
	p.notifier.Notify(id)
	p.log.Info("agent settings profile queued", "enrollment_id", id, "command_uuid", cmd.UUID)
	return nil
}

// profile builds the settings profile for one device: from the
// Provisioner's template when the values allow, else with the encoder.
func (p *Provisioner) profile(id, secret string) ([]byte, error) {
	outer, inner := mdm.NewUUID(), mdm.NewUUID()
	if p.tmpl != nil {
		if doc, ok := p.tmpl.fill(outer, inner, id, secret); ok {
			return doc, nil
		}
	}
	return renderProfile(Settings{ServerURL: p.serverURL, EnrollmentID: id, Secret: secret, CACertificate: p.caPEM}, outer, inner)
}

// installProfile returns an InstallProfile command carrying profile.
func (p *Provisioner) installProfile(profile []byte) (*mdm.Command, error) {
	if p.cmdTmpl != nil {
		return p.cmdTmpl.New(profile), nil
	}
	return mdm.NewCommand("InstallProfile", map[string]any{"Payload": profile})
}

// ParseSettings reads the agent settings from a managed-preferences plist
// (or the settings payload itself).
func ParseSettings(data []byte) (*Settings, error) {
	var s Settings
	if err := plist.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("agent settings: %w", err)
	}
	if s.ServerURL == "" || s.EnrollmentID == "" || s.Secret == "" {
		return nil, errors.New("agent settings: ServerURL, EnrollmentID and Secret are required")
	}
	return &s, nil
}
