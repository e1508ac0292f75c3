// Package record holds the records storage backends export and import when
// an installation moves from one backend to another (see storage/migrate),
// for the kinds that have no public type of their own, and the names of
// the kinds counted on both sides.
package record

import (
	"encoding/json"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// Kinds of records, in the order they are copied (a record only refers to
// kinds copied before it).
const (
	Devices        = "devices"         // mdm.Device, with last-seen and push state
	CertBindings   = "cert_bindings"   // identity certificates bound to a device (counted, copied with devices)
	LastSeen       = "last_seen"       // devices with a last-seen time (counted, copied with devices)
	PushStates     = "push_states"     // devices with a recorded push (counted, copied with devices)
	Commands       = "commands"        // Command
	QueuedCommands = "queued_commands" // commands still queued (counted, copied with commands)
	NotNowCommands = "notnow_commands" // queued commands marked NotNow in the current session (counted)
	APIKeys        = "api_keys"        // storage.APIKey, with its hash
	Challenges     = "challenges"      // Challenge
	Agents         = "agents"          // Agent
	AgentEvents    = "agent_events"    // events of agents (counted, copied with agents)
	DDMRecords     = "ddm_records"     // DDM
	DDMEvents      = "ddm_events"      // status events of DDM records (counted, copied with them)
	Groups         = "groups"          // scheduler.Group
	Memberships    = "memberships"     // Membership
	Policies       = "policies"        // scheduler.PolicyRecord
	Exceptions     = "exceptions"      // scheduler.ExceptionRecord
	UpdateStates   = "update_states"   // scheduler.State
	UpdateHistory  = "update_history"  // HistoryEntry
	AuditLog       = "audit_log"       // scheduler.AuditEntry
	CatalogFeeds   = "catalog_feeds"   // CatalogItem: feed kind -> raw feed body
	CatalogPolls   = "catalog_polls"   // CatalogItem: feed kind -> poll state
	ManualReleases = "manual_releases" // CatalogItem: version -> release added by hand
	// Raw kinds: CatalogItem records copied as stored, so that sealed
	// secrets move without being opened.
	EnrollmentGuards = "enrollment_guards" // enrollment ID -> mdm.EnrollmentGuard JSON
	ADEDevices       = "ade_devices"       // serial -> storage.ADEDevice JSON
	ADECursors       = "ade_cursors"       // ABM server name -> DEP sync cursor
	DEPServers       = "dep_servers"       // ABM server name -> storage.DEPServer JSON (secrets sealed)
	// Raw kinds of the rollout and reporting features (JSON values alike
	// in both backends).
	RolloutPauses  = "rollout_pauses"  // group ID ("\x00": the fleet) -> scheduler.Pause JSON
	RingPlans      = "ring_plans"      // plan ID -> scheduler.RingPlan JSON, its promotions included
	EvidenceDays   = "evidence_days"   // YYYY-MM-DD -> storage.EvidenceDay JSON
	ForecastMarks  = "forecast_marks"  // device ID -> storage.ForecastMark JSON
	DDMItems       = "ddm_items"       // status items of DDM records (counted, copied with them)
	ComplianceDays = "compliance_days" // storage.ComplianceDay
	// Webhooks: endpoints (secrets still sealed), pending deliveries and
	// the ledger of events emitted once.
	WebhookEndpoints = "webhook_endpoints" // storage.WebhookEndpoint
	WebhookOutbox    = "webhook_outbox"    // storage.WebhookDelivery
	WebhookOnce      = "webhook_once"      // OnceEntry
)

// Kinds lists every kind in copy order.
var Kinds = []string{
	Devices, CertBindings, LastSeen, PushStates,
	Commands, QueuedCommands, NotNowCommands,
	APIKeys, Challenges, Agents, AgentEvents, DDMRecords, DDMEvents, DDMItems,
	Groups, Memberships, Policies, Exceptions, UpdateStates, UpdateHistory, AuditLog,
	CatalogFeeds, CatalogPolls, ManualReleases,
	EnrollmentGuards, ADEDevices, ADECursors, DEPServers,
	RolloutPauses, RingPlans, EvidenceDays, ForecastMarks,
	ComplianceDays, WebhookEndpoints, WebhookOutbox, WebhookOnce,
}

// RawKinds are the kinds copied as CatalogItem records, key and stored
// value, in copy order.
var RawKinds = []string{CatalogFeeds, CatalogPolls, ManualReleases, EnrollmentGuards, ADEDevices, ADECursors, DEPServers,
	RolloutPauses, RingPlans, EvidenceDays, ForecastMarks}

// CatalogItem is one record of a raw kind (see RawKinds), as stored: the
// release catalog's, the enrollment guards, the ABM data, the rollout
// pauses and ring plans, the evidence days and the forecast marks.
type CatalogItem struct {
	Key   string
	Value []byte
}

// Counts is the number of records per kind.
type Counts map[string]int

// Empty reports whether every count is zero.
func (c Counts) Empty() bool {
	for _, n := range c {
		if n != 0 {
			return false
		}
	}
	return true
}

// Command is a command record with its place in the queue. Record.Seq is
// its position in FIFO order (unique across enrollments) and is kept.
type Command struct {
	Record *mdm.CommandRecord
	// Queued: still in the enrollment's queue (no final report yet).
	Queued bool
	// NotNow: queued and answered NotNow in the current session, so not
	// offered again before the next Idle.
	NotNow bool
}

// Challenge is a one-time SCEP challenge, by hash.
type Challenge struct {
	Hash    string
	Expires time.Time
}

// Agent is a device's companion agent: its secret hash and state (events
// oldest first).
type Agent struct {
	ID         string
	SecretHash string
	State      storage.AgentState
}

// DDM is an enrollment's declarative record and status history (oldest
// first), as stored JSON, so that the device's raw status items are kept
// byte for byte.
type DDM struct {
	ID      string
	Record  json.RawMessage
	History []json.RawMessage
}

// Membership puts a device into a group other than the default one.
type Membership struct {
	DeviceID string
	GroupID  string
}

// HistoryEntry is one transition of a device's update history. Seq orders
// the entries (unique across devices) and is kept.
type HistoryEntry struct {
	DeviceID   string
	Seq        uint64
	Transition scheduler.Transition
}

// OnceEntry is one event ID in the ledger of webhook events emitted once,
// and until when it is kept.
type OnceEntry struct {
	EventID   string
	KeepUntil time.Time
}
