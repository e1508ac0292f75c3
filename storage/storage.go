// Package storage declares what Sundial keeps and the errors its backends
// return. Backends live in subpackages (bolt is the default) and all pass the
// conformance suite in storagetest.
//
// Storage never reads the clock: callers pass now.
package storage

import (
	"context"
	"errors"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/push"
)

// Sentinel errors every backend returns.
var (
	ErrNotFound = errors.New("not found")
	// ErrCertInUse is returned when a certificate already bound to another
	// enrollment is presented at Authenticate.
	ErrCertInUse = errors.New("certificate is bound to another enrollment")
	// ErrExists is returned when creating something that already exists.
	ErrExists = errors.New("already exists")
	// ErrNotBound is returned by StoreBoundReportAndNext when the
	// request's certificate is not bound to the enrollment.
	ErrNotBound = errors.New("certificate is not bound to this enrollment")
)

// CheckinStore records check-in messages.
type CheckinStore interface {
	// Authenticate creates or resets the enrollment: it binds certHash,
	// clears the command queue, and disables the enrollment until the next
	// TokenUpdate. A certHash bound to another enrollment gives ErrCertInUse.
	Authenticate(ctx context.Context, id string, msg *mdm.CheckinMessage, certHash string, now time.Time) error
	// TokenUpdate stores the push token and magic, enables the enrollment and
	// clears an invalid-token mark. first reports the first TokenUpdate after
	// Authenticate; on that one, onFirst (if not nil) is queued for the
	// enrollment in the same transaction and, for a DeviceInformation
	// command, the inventory is marked as requested. A user channel's device
	// enrollment must exist.
	TokenUpdate(ctx context.Context, id string, msg *mdm.CheckinMessage, onFirst *mdm.Command, now time.Time) (first bool, err error)
	// CheckOut disables the enrollment (and its user channels).
	CheckOut(ctx context.Context, id string, now time.Time) error
	// SetBootstrapToken stores a sealed bootstrap token; nil removes it.
	SetBootstrapToken(ctx context.Context, id string, sealed []byte, now time.Time) error
	// CertBound reports whether certHash is bound to the enrollment id (for a
	// user channel, to its device enrollment).
	CertBound(ctx context.Context, id, certHash string) (bool, error)
}

// DeviceStore reads and updates device records.
type DeviceStore interface {
	Device(ctx context.Context, id string) (*mdm.Device, error)
	// Devices lists records ordered by ID, starting after `after`; limit <= 0
	// means all.
	Devices(ctx context.Context, after string, limit int) ([]*mdm.Device, error)
	// UpdateInventory stores a DeviceInformation result.
	UpdateInventory(ctx context.Context, id string, inv *mdm.Inventory, now time.Time) error
	// TouchLastSeen records check-in times in bulk (written lazily).
	TouchLastSeen(ctx context.Context, seen map[string]time.Time) error
}

// CommandQueue is the durable FIFO command queue per enrollment.
type CommandQueue interface {
	// Enqueue queues cmd for each enrollment. Unknown enrollments give
	// ErrNotFound and nothing is queued; a UUID already used for one of them
	// gives ErrExists.
	Enqueue(ctx context.Context, ids []string, cmd *mdm.Command, now time.Time) error
	// StoreReportAndNext records a report (if it concerns a command) and
	// returns the next command to send, or nil. An Idle report starts a
	// session. NotNow leaves the command queued but it is not offered again
	// in the same session (so one NotNow neither starves the rest of the
	// queue nor comes back before the device polls again); the next Idle
	// offers it again. A report for an unknown or finished command is
	// recorded nowhere and is not an error (duplicate reports are harmless).
	// reportedType is the RequestType of the command the report concerned
	// ("" when nothing was recorded).
	StoreReportAndNext(ctx context.Context, id string, r *mdm.Report, raw []byte, now time.Time) (reportedType string, next *mdm.Command, err error)
	// StoreReportInventoryAndNext is StoreReportAndNext that also stores
	// inv (if not nil) when r acknowledges a DeviceInformation command:
	// merged into the device record as UpdateInventory does, in the same
	// transaction as the report. inv on a report of another command, or of
	// an unknown one, changes no device record. invStored reports whether
	// inv was stored (false also when id's device record is missing or
	// does not decode; the report is still recorded).
	StoreReportInventoryAndNext(ctx context.Context, id string, r *mdm.Report, raw []byte, inv *mdm.Inventory, now time.Time) (reportedType string, invStored bool, next *mdm.Command, err error)
	// StoreBoundReportAndNext is StoreReportInventoryAndNext for a device
	// request signed with certHash: when certHash is not bound to id (as
	// CertBound answers) it records nothing and returns ErrNotBound. The
	// check may share the report's transaction.
	StoreBoundReportAndNext(ctx context.Context, id, certHash string, r *mdm.Report, raw []byte, inv *mdm.Inventory, now time.Time) (reportedType string, invStored bool, next *mdm.Command, err error)
	// Command returns one command record.
	Command(ctx context.Context, id, uuid string) (*mdm.CommandRecord, error)
	// Commands lists an enrollment's commands in queue order.
	Commands(ctx context.Context, id string) ([]*mdm.CommandRecord, error)
	// HasPending reports whether the enrollment has commands queued.
	HasPending(ctx context.Context, id string) (bool, error)
}

// InventoryScheduler finds devices whose inventory is due for a refresh.
type InventoryScheduler interface {
	// InventoryDue lists up to limit (0: no limit) enabled device
	// enrollments (not user channels) whose inventory was last requested
	// before `before` or never, longest waiting first (never first, then by
	// time and ID). It runs every few seconds: it must cost in proportion
	// to what it returns, not to the fleet.
	InventoryDue(ctx context.Context, before time.Time, limit int) ([]string, error)
	// MarkInventoryRequested records that inventory was requested.
	MarkInventoryRequested(ctx context.Context, ids []string, now time.Time) error
}

// APIKeyStore keeps hashed admin API keys.
type APIKeyStore interface {
	PutAPIKey(ctx context.Context, k APIKey) error
	APIKeyByHash(ctx context.Context, hash string) (*APIKey, error)
	APIKeys(ctx context.Context) ([]APIKey, error)
	RevokeAPIKey(ctx context.Context, id string, now time.Time) error
}

// APIKey is an admin credential; only its hash is stored.
type APIKey struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Role is "read" or "admin"; empty is a key made before roles existed,
	// which is an admin.
	Role      string    `json:"role,omitempty"`
	Hash      string    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// ChallengeStore keeps one-time SCEP challenges by hash.
type ChallengeStore interface {
	PutChallenge(ctx context.Context, key string, expires time.Time) error
	// TakeChallenge consumes a challenge; false if unknown, used or expired.
	TakeChallenge(ctx context.Context, key string, now time.Time) (bool, error)
}

// PushStore keeps push targets and the re-push schedule (the contract is
// push.Store's). The check-in side of that contract lives elsewhere:
// TokenUpdate clears the invalid-token mark, and TouchLastSeen resets the
// re-push schedule of a device seen at or after its last push.
type PushStore interface {
	push.Store
}

// All is everything a complete backend implements.
type All interface {
	CheckinStore
	DeviceStore
	CommandQueue
	InventoryScheduler
	APIKeyStore
	ChallengeStore
	PushStore
	Close() error
}
