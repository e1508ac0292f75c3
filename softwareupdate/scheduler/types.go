package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate"
)

// DefaultGroupID is the group every device belongs to until it is assigned
// to another one. It always exists and cannot be deleted.
const DefaultGroupID = "default"

// Errors of the Managed OS store and manager.
var (
	// ErrConflict: a state was changed by someone else since it was read.
	ErrConflict = errors.New("update state changed concurrently")
	// ErrInvalid wraps bad admin input (the message says what is wrong).
	ErrInvalid = errors.New("invalid input")
)

// Group is a set of devices sharing one update policy.
type Group struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// PolicyRecord is a group's stored policy.
type PolicyRecord struct {
	GroupID string                `json:"group_id"`
	Policy  softwareupdate.Policy `json:"policy"`
	// Revision increases with every change of the group's policy; the
	// scheduler resets first-seen-non-compliant when it changes, so a new
	// policy always gives fresh minimum notice.
	Revision  uint64    `json:"revision"`
	UpdatedAt time.Time `json:"updated_at"`
	UpdatedBy string    `json:"updated_by"`
}

// ExceptionScope says what an exception applies to.
type ExceptionScope string

// Exception scopes.
const (
	ScopeDevice ExceptionScope = "device"
	ScopeGroup  ExceptionScope = "group"
)

// ExceptionRecord is a stored exception for one device or one group.
type ExceptionRecord struct {
	Scope     ExceptionScope           `json:"scope"`
	ID        string                   `json:"id"` // device or group ID
	Exception softwareupdate.Exception `json:"exception"`
	CreatedAt time.Time                `json:"created_at"`
}

// Facts is what the scheduler keeps of a device's inventory, refreshed
// whenever the device reports (so passes need not read device records).
type Facts struct {
	OSVersion    string    `json:"os_version,omitempty"`
	Build        string    `json:"build,omitempty"`
	BoardID      string    `json:"board_id,omitempty"`
	Model        string    `json:"model,omitempty"`
	Supervised   bool      `json:"supervised,omitempty"`
	AppleSilicon bool      `json:"apple_silicon,omitempty"`
	Bootstrap    bool      `json:"bootstrap_escrowed,omitempty"`
	Enabled      bool      `json:"enabled,omitempty"`
	InventoryAt  time.Time `json:"inventory_at,omitzero"`
	// TimeZone is the IANA zone the Mac's agent last reported (WithZones),
	// read when the device is touched (the agent API touches it when the
	// zone changes), so passes need not read the agent store.
	TimeZone string `json:"time_zone,omitempty"`
}

// FactsOf extracts Facts from a device record. The inventory's OS version
// wins over the one sent at Authenticate.
func FactsOf(d *mdm.Device) Facts {
	f := Facts{
		OSVersion: d.Inventory.OSVersion, Build: d.Inventory.BuildVersion,
		BoardID: d.Inventory.SoftwareUpdateDeviceID, Model: d.Inventory.ProductName,
		Supervised: d.Inventory.IsSupervised, AppleSilicon: d.Inventory.IsAppleSilicon,
		Bootstrap: d.BootstrapTokenEscrowed(), Enabled: d.Enabled,
	}
	if !d.InventoryAt.IsZero() {
		f.InventoryAt = d.InventoryAt.UTC()
	}
	if f.OSVersion == "" {
		f.OSVersion, f.Build = d.OSVersion, d.BuildVersion
	}
	if f.Model == "" {
		f.Model = d.ProductName
	}
	return f
}

// State is the scheduler's record of one device: where it stands, why, and
// which enforcement step was sent last. Enforcers own the step fields.
type State struct {
	DeviceID string `json:"device_id"`
	// Rev is the stored revision; Commit refuses a state whose Rev is not
	// the stored one (ErrConflict) and stores Rev+1.
	Rev       uint64    `json:"rev"`
	GroupID   string    `json:"group_id"`
	PolicyRev uint64    `json:"policy_rev"`
	Facts     Facts     `json:"facts"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`

	Phase        softwareupdate.Phase `json:"phase,omitempty"`
	Reason       string               `json:"reason,omitempty"`
	PhaseSince   time.Time            `json:"phase_since,omitzero"`
	Target       string               `json:"target,omitempty"`
	TargetBuild  string               `json:"target_build,omitempty"`
	MajorUpgrade bool                 `json:"major_upgrade,omitempty"`
	Deadline     time.Time            `json:"deadline,omitzero"`
	// FirstNonCompliant is when the device was first seen needing Target
	// under its current policy revision (the minimum-notice anchor).
	FirstNonCompliant time.Time `json:"first_non_compliant,omitzero"`

	// Path is the enforcement path in use (legacy or declarative).
	Path softwareupdate.EnforcementPath `json:"path,omitempty"`
	// Step is the last enforcement step sent, StepAt when, StepCommand the
	// UUID of its last command; Awaiting is that command's request type
	// while its result is outstanding.
	Step        string    `json:"step,omitempty"`
	StepAt      time.Time `json:"step_at,omitzero"`
	StepCommand string    `json:"step_command,omitempty"`
	Awaiting    string    `json:"awaiting,omitempty"`
	// NextCheck is when the enforcer wants to look again (poll, verify,
	// re-send); zero for none.
	NextCheck time.Time `json:"next_check,omitzero"`
	// InstallAction is the ScheduleOSUpdate action of the last install
	// step, or the one to use next after the device substituted another.
	InstallAction string `json:"install_action,omitempty"`
	// ProductKey is the update's key as the device named it.
	ProductKey string `json:"product_key,omitempty"`
	Downloaded bool   `json:"downloaded,omitempty"`
	// StartNowAt is when the user asked to install now (agent).
	StartNowAt time.Time `json:"start_now_at,omitzero"`
	// Attempts counts the install commands sent for the target (Start Now
	// and forced installs), once each, when they are sent.
	Attempts int `json:"attempts,omitempty"`
	// Errors counts the failed answers in a row to the current steps (the
	// backoff exponent); progress resets it.
	Errors int `json:"errors,omitempty"`
	// Failure is a surfaced failure reason; RetryAt when to try again
	// (zero: only an event or an admin clears it).
	Failure   string    `json:"failure,omitempty"`
	FailureAt time.Time `json:"failure_at,omitzero"`
	RetryAt   time.Time `json:"retry_at,omitzero"`
	// FailureSource is FailureFromDeclaration or FailureFromInstall when
	// the Mac's status channel reported Failure (it clears when the Mac
	// reports it recovered); empty for failures Sundial surfaced.
	FailureSource string `json:"failure_source,omitempty"`

	// NotNowCount counts the NotNow answers to the current step's command
	// since NotNowSince (reset when the Mac answers it or a new step goes out).
	NotNowCount int       `json:"not_now_count,omitempty"`
	NotNowSince time.Time `json:"not_now_since,omitzero"`
	// RequiresBootstrap: the Mac said its update to Target needs a
	// bootstrap token (AvailableOSUpdates' RequiresBootstrapToken, or a
	// failed declarative install).
	RequiresBootstrap bool `json:"requires_bootstrap,omitempty"`

	// NextDue is when the scheduler must look at the device again by the
	// passage of time alone (the due index); zero for never.
	NextDue time.Time `json:"next_due,omitzero"`

	// OfflineAt is when the Mac was found offline past its deadline;
	// GraceUntil when its offline grace ends (grace.go).
	OfflineAt  time.Time `json:"offline_at,omitzero"`
	GraceUntil time.Time `json:"grace_until,omitzero"`

	// Compliance evidence (evidence.go). NotifiedAt is when the Mac was
	// first told of its current episode's target (notify, countdown or
	// enforce). PatchedTarget is the last target it was seen to reach,
	// PatchedAt when, with the notice and deadline it had then.
	NotifiedAt      time.Time `json:"notified_at,omitzero"`
	PatchedTarget   string    `json:"patched_target,omitempty"`
	PatchedAt       time.Time `json:"patched_at,omitzero"`
	PatchedNotice   time.Time `json:"patched_notice,omitzero"`
	PatchedDeadline time.Time `json:"patched_deadline,omitzero"`

	// DeadlineMoved says why and where the business calendar moved
	// Deadline ("" when it did not): "Sat 2026-12-26 12:00 is a holiday
	// (Boxing Day) → Mon 2026-12-28 09:00 Europe/Berlin".
	DeadlineMoved string `json:"deadline_moved,omitempty"`
}

// ResetEnforcement clears every step field (a new target, path or policy).
func (s *State) ResetEnforcement() {
	s.Step, s.StepAt, s.StepCommand, s.Awaiting = "", time.Time{}, "", ""
	s.NextCheck = time.Time{}
	s.ProductKey, s.Downloaded, s.InstallAction = "", false, ""
	s.StartNowAt = time.Time{}
	s.Attempts, s.Errors = 0, 0
	s.NotNowCount, s.NotNowSince = 0, time.Time{}
	s.RequiresBootstrap = false
	s.ClearFailure()
}

// ClearFailure removes a surfaced failure.
func (s *State) ClearFailure() {
	s.Failure, s.FailureAt, s.RetryAt, s.FailureSource = "", time.Time{}, time.Time{}, ""
}

// Fail surfaces a failure, to be retried at retryAt (zero: on an event).
func (s *State) Fail(reason string, now, retryAt time.Time) {
	s.Failure, s.FailureAt, s.RetryAt = reason, now, retryAt
}

// EventKind classifies a history entry.
type EventKind string

// History entry kinds.
const (
	EventPhase   EventKind = "phase"   // a phase change
	EventStep    EventKind = "step"    // an enforcement step was sent
	EventResult  EventKind = "result"  // the device reported on a step
	EventFailure EventKind = "failure" // a failure was surfaced
	EventReset   EventKind = "reset"   // policy, target or path changed
	EventMoved   EventKind = "moved"   // the business calendar moved the deadline
)

// Transition is one entry of a device's history: "why is this Mac
// restarting?" always has an answer.
type Transition struct {
	At       time.Time            `json:"at"`
	Kind     EventKind            `json:"kind"`
	From     softwareupdate.Phase `json:"from,omitempty"`
	To       softwareupdate.Phase `json:"to,omitempty"`
	Step     string               `json:"step,omitempty"`
	Reason   string               `json:"reason"`
	Target   string               `json:"target,omitempty"`
	Deadline time.Time            `json:"deadline,omitzero"`
}

// AuditEntry is one admin change: who, when, what, before and after.
type AuditEntry struct {
	Seq     uint64          `json:"seq"`
	At      time.Time       `json:"at"`
	Actor   string          `json:"actor"`
	Action  string          `json:"action"`
	Subject string          `json:"subject"`
	Before  json.RawMessage `json:"before,omitempty"`
	After   json.RawMessage `json:"after,omitempty"`
}

// NewAuditEntry builds an entry, encoding before and after as JSON (nil
// values are left out).
func NewAuditEntry(now time.Time, actor, action, subject string, before, after any) (*AuditEntry, error) {
	a := &AuditEntry{At: now, Actor: actor, Action: action, Subject: subject}
	var err error
	if a.Before, err = encodeAudit(before); err != nil {
		return nil, err
	}
	if a.After, err = encodeAudit(after); err != nil {
		return nil, err
	}
	return a, nil
}

func encodeAudit(v any) (json.RawMessage, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode audit value: %w", err)
	}
	if string(b) == "null" {
		return nil, nil
	}
	return b, nil
}

// Commit is one device's update, written atomically: the state, its new
// history entries and the commands to queue for it.
type Commit struct {
	State    *State
	History  []Transition
	Commands []*mdm.Command
	// Prepared is the store's own encoding of this commit, set by
	// CommitPreparer.PrepareCommits (nil: none). The commit must not
	// change once prepared.
	Prepared any
}

// CommitPreparer is a StateStore whose Commit has work that can be done
// before it (encoding states, history entries and command bodies). A pass
// calls PrepareCommits on the goroutine that evaluates the next chunk, so
// that the work overlaps the commit of the previous one: the single
// database writer is the pass's critical path.
type CommitPreparer interface {
	PrepareCommits(commits []Commit)
}

// ConflictError lists the devices whose Commit was refused; nothing of the
// batch was written.
type ConflictError struct{ IDs []string }

func (e *ConflictError) Error() string {
	return "update state changed concurrently for " + strings.Join(e.IDs, ", ")
}

// Unwrap makes errors.Is(err, ErrConflict) work.
func (e *ConflictError) Unwrap() error { return ErrConflict }

// GroupStore keeps groups and membership.
type GroupStore interface {
	// PutGroup creates or renames a group and writes the audit entry.
	PutGroup(ctx context.Context, g Group, audit *AuditEntry) error
	// DeleteGroup removes a group, its policy, its exception and its
	// memberships (members return to the default group). The default group
	// cannot be deleted (ErrInvalid); an unknown one gives storage.ErrNotFound.
	DeleteGroup(ctx context.Context, id string, audit *AuditEntry) error
	// Groups lists groups by ID; the default group is always listed.
	Groups(ctx context.Context) ([]Group, error)
	// AssignDevices moves devices into a group (which must exist:
	// storage.ErrNotFound). Assigning to the default group removes the
	// membership record.
	AssignDevices(ctx context.Context, group string, ids []string, audit *AuditEntry) error
	// GroupsOf returns the group of each device (DefaultGroupID for devices
	// without a membership).
	GroupsOf(ctx context.Context, ids []string) ([]string, error)
}

// PolicyStore keeps one policy per group.
type PolicyStore interface {
	// PutPolicy stores rec for rec.GroupID (which must exist) with the next
	// revision, writes the audit entry, and returns the stored record.
	PutPolicy(ctx context.Context, rec PolicyRecord, audit *AuditEntry) (*PolicyRecord, error)
	// Policies returns every group's policy.
	Policies(ctx context.Context) ([]PolicyRecord, error)
}

// ExceptionStore keeps exceptions per device and per group.
type ExceptionStore interface {
	// PutException creates or replaces the exception of (Scope, ID).
	PutException(ctx context.Context, rec ExceptionRecord, audit *AuditEntry) error
	// DeleteException removes it (storage.ErrNotFound if there is none).
	DeleteException(ctx context.Context, scope ExceptionScope, id string, audit *AuditEntry) error
	// Exceptions lists every exception.
	Exceptions(ctx context.Context) ([]ExceptionRecord, error)
}

// StateStore keeps per-device update state, its due index and history.
type StateStore interface {
	// States loads the states of ids, nil where a device has none.
	States(ctx context.Context, ids []string) ([]*State, error)
	// DueDevices lists up to limit devices whose NextDue is at or before
	// now, earliest first.
	DueDevices(ctx context.Context, now time.Time, limit int) ([]string, error)
	// Commit writes every commit in one transaction: each state (checked
	// against its Rev, stored with Rev+1 and re-indexed by NextDue), its
	// history entries, and its commands queued at now. A revision mismatch
	// gives a *ConflictError and writes nothing.
	Commit(ctx context.Context, commits []Commit, now time.Time) error
	// StateIDs lists the devices that have a state, in ID order, after
	// `after`, up to limit.
	StateIDs(ctx context.Context, after string, limit int) ([]string, error)
	// Unevaluated lists device enrollments (not user channels) that have no
	// state yet, in ID order, after `after`, up to limit.
	Unevaluated(ctx context.Context, after string, limit int) ([]string, error)
	// History returns a device's last `limit` history entries, oldest first
	// (limit <= 0: all).
	History(ctx context.Context, id string, limit int) ([]Transition, error)
}

// AuditLog reads the audit log.
type AuditLog interface {
	// Audit lists entries with Seq > after, oldest first, up to limit.
	Audit(ctx context.Context, after uint64, limit int) ([]AuditEntry, error)
}

// Store is everything the Managed OS engine keeps.
type Store interface {
	GroupStore
	PolicyStore
	ExceptionStore
	StateStore
	AuditLog
}

// DeviceReader reads device records (storage.DeviceStore has it).
type DeviceReader interface {
	Device(ctx context.Context, id string) (*mdm.Device, error)
	Devices(ctx context.Context, after string, limit int) ([]*mdm.Device, error)
}

// ValidGroupID reports whether id is a usable group ID: 1 to 64 of
// [a-z0-9._-], starting with a letter or digit.
func ValidGroupID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}
