package storage

import (
	"context"
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
