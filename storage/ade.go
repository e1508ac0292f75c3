package storage

import (
	"context"
	"encoding/json"
	"time"
)

// Bounds of an ABM device record, checked where it is written.
const (
	MaxADEField  = 128 // serial, model, description, ... (bytes)
	MaxADECursor = 4096
)

// ADEDevice is a Mac that Apple Business Manager assigned to one of
// Sundial's MDM servers, as the DEP API last described it, plus what Sundial
// did with it.
type ADEDevice struct {
	Serial             string    `json:"serial_number"`
	Server             string    `json:"server"` // Sundial's name for the ABM MDM server
	Model              string    `json:"model,omitempty"`
	Description        string    `json:"description,omitempty"`
	Color              string    `json:"color,omitempty"`
	OS                 string    `json:"os,omitempty"`
	DeviceFamily       string    `json:"device_family,omitempty"`
	ProfileStatus      string    `json:"profile_status,omitempty"` // empty, assigned, pushed, removed
	ProfileUUID        string    `json:"profile_uuid,omitempty"`
	DeviceAssignedBy   string    `json:"device_assigned_by,omitempty"`
	DeviceAssignedDate time.Time `json:"device_assigned_date,omitzero"`
	OpType             string    `json:"op_type,omitempty"` // the last op_type seen: added, modified
	OpDate             time.Time `json:"op_date,omitzero"`
	// Group is the Sundial group the serial joins at enrollment ("" is the
	// default group).
	Group string `json:"group,omitempty"`
	// AssignResult is Apple's answer to Sundial's last profile assignment
	// (SUCCESS, NOT_ACCESSIBLE, FAILED, ...), AssignedAt its time.
	AssignResult string    `json:"assign_result,omitempty"`
	AssignedAt   time.Time `json:"assigned_at,omitzero"`
	// EnrollmentID is the UDID the Mac enrolled with, EnrolledAt when.
	EnrollmentID string    `json:"enrollment_id,omitempty"`
	EnrolledAt   time.Time `json:"enrolled_at,omitzero"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// ADEPage is one page of a DEP device fetch or sync, applied in one
// transaction so that a sync interrupted between pages resumes from the
// last cursor without losing or duplicating a device.
type ADEPage struct {
	Server  string
	Upsert  []ADEDevice // added or modified; Group, AssignResult, Enrollment* are kept
	Deleted []string    // serials ABM no longer assigns to this server
	Cursor  string      // stored with the page
}

// ADEStore keeps the Macs of Apple Business Manager and the sync cursor of
// each ABM MDM server.
type ADEStore interface {
	// ApplyADEPage stores one page and its cursor atomically.
	ApplyADEPage(ctx context.Context, p ADEPage, now time.Time) error
	// ADECursor returns the stored cursor of server ("" if none).
	ADECursor(ctx context.Context, server string) (string, error)
	// ADEDevice returns one device by serial, or ErrNotFound.
	ADEDevice(ctx context.Context, serial string) (*ADEDevice, error)
	// ADEDevices lists devices ordered by serial, after `after`; limit <= 0: all.
	ADEDevices(ctx context.Context, after string, limit int) ([]ADEDevice, error)
}

// ADEUpdater records what Sundial did with ABM devices.
type ADEUpdater interface {
	// SetADEAssignResults stores Apple's per-serial answers to a profile
	// assignment (unknown serials are skipped).
	SetADEAssignResults(ctx context.Context, results map[string]string, now time.Time) error
	// SetADEGroup moves serial to group ("" is the default group).
	SetADEGroup(ctx context.Context, serial, group string, now time.Time) error
	// MarkADEEnrolled records that serial enrolled as enrollment id udid.
	MarkADEEnrolled(ctx context.Context, serial, udid string, now time.Time) error
}

// CheckADEDevice checks the bounds of a device record.
func CheckADEDevice(d *ADEDevice) error {
	if d.Serial == "" {
		return errADEField("serial_number")
	}
	for name, v := range map[string]string{
		"serial_number": d.Serial, "server": d.Server, "model": d.Model, "description": d.Description,
		"color": d.Color, "os": d.OS, "device_family": d.DeviceFamily, "profile_status": d.ProfileStatus,
		"profile_uuid": d.ProfileUUID, "device_assigned_by": d.DeviceAssignedBy, "op_type": d.OpType,
		"group": d.Group, "assign_result": d.AssignResult, "enrollment_id": d.EnrollmentID,
	} {
		if len(v) > MaxADEField {
			return errADEField(name)
		}
	}
	return nil
}

type errADEField string

func (e errADEField) Error() string { return "ade device: missing or overlong " + string(e) }

// MaxDEPServerSize caps one stored ABM MDM server record (JSON).
const MaxDEPServerSize = 64 << 10

// DEPServer is one of Sundial's MDM servers in Apple Business Manager:
// its token keypair, its (sealed) OAuth tokens, and what Sundial learned
// and did through it. Secrets are sealed by the caller; storage keeps bytes.
type DEPServer struct {
	Name string `json:"name"`
	// BaseURL overrides Apple's DEP API URL (the mock, in tests and demos).
	BaseURL string `json:"base_url,omitempty"`
	// CertPEM is the public certificate uploaded to ABM; SealedKey its key.
	CertPEM   []byte `json:"cert_pem,omitempty"`
	SealedKey []byte `json:"sealed_key,omitempty"`
	// SealedTokens is the decrypted server token's JSON, sealed.
	SealedTokens []byte    `json:"sealed_tokens,omitempty"`
	TokenExpiry  time.Time `json:"token_expiry,omitzero"`
	TokenAt      time.Time `json:"token_uploaded_at,omitzero"`
	// Account details from ABM.
	ServerName string `json:"server_name,omitempty"`
	ServerUUID string `json:"server_uuid,omitempty"`
	OrgName    string `json:"org_name,omitempty"`
	AdminID    string `json:"admin_id,omitempty"`
	// Profiles maps a Sundial group ("" = default) to the ADE profile
	// defined for it in ABM.
	Profiles map[string]DEPProfile `json:"profiles,omitempty"`
	// Sync state: the last successful sync, the last error and when the
	// next attempt may run (backoff).
	LastSyncAt time.Time `json:"last_sync_at,omitzero"`
	LastError  string    `json:"last_error,omitempty"`
	RetryAt    time.Time `json:"retry_at,omitzero"`
	Failures   int       `json:"failures,omitempty"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// DEPProfile is an ADE profile Sundial defined in ABM for a group.
type DEPProfile struct {
	UUID string `json:"uuid"`
	// Hash identifies the profile content, so a changed definition is
	// defined again.
	Hash      string    `json:"hash"`
	DefinedAt time.Time `json:"defined_at"`
}

// DEPServerStore keeps the ABM MDM servers.
type DEPServerStore interface {
	// PutDEPServer creates or replaces a server record (bounded by
	// MaxDEPServerSize).
	PutDEPServer(ctx context.Context, s *DEPServer) error
	// DEPServer returns one server by name, or ErrNotFound.
	DEPServer(ctx context.Context, name string) (*DEPServer, error)
	// DEPServers lists servers by name.
	DEPServers(ctx context.Context) ([]DEPServer, error)
}

// EncodeDEPServer checks and encodes a server record.
func EncodeDEPServer(s *DEPServer) ([]byte, error) {
	if !ValidDEPName(s.Name) {
		return nil, errADEField("name (1 to 64 letters, digits, dots, dashes, underscores)")
	}
	b, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxDEPServerSize {
		return nil, errADEField("server record")
	}
	return b, nil
}

// ValidDEPName reports whether n can name an ABM server in Sundial.
func ValidDEPName(n string) bool {
	if n == "" || len(n) > 64 {
		return false
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
