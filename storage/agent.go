package storage

import (
	"context"
	"errors"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
)

// AgentStore keeps what the companion agent needs and tells: the hash of
// each device's agent secret, the Mac's time zone and the prompts and
// choices it reported.
type AgentStore interface {
	// PutAgentSecret sets (or rotates) a device's agent secret hash.
	PutAgentSecret(ctx context.Context, id, hash string, now time.Time) error
	// ProvisionAgent sets (or rotates) a device's agent secret hash and
	// queues cmd, the command that carries the secret, in one transaction:
	// both are written or neither. An unknown device is ErrNotFound, a
	// command UUID the device already has is ErrExists.
	ProvisionAgent(ctx context.Context, id, hash string, cmd *mdm.Command, now time.Time) error
	// AgentSecretHash returns the hash; ErrNotFound when none is set.
	AgentSecretHash(ctx context.Context, id string) (string, error)
	// AppendAgentReport records a report: its events join the device's
	// agent history (the newest MaxAgentEvents are kept) and a non-empty
	// time zone becomes the device's.
	AppendAgentReport(ctx context.Context, id string, rep AgentReport, now time.Time) error
	// AgentState returns what is known of a device's agent; ErrNotFound when
	// the device never had a secret.
	AgentState(ctx context.Context, id string) (*AgentState, error)
}

// CheckProvision rejects what ProvisionAgent must not write: an empty
// device ID or secret hash (an empty hash means "no secret"), or a command
// without UUID, request type or body.
func CheckProvision(id, hash string, cmd *mdm.Command) error {
	switch {
	case id == "":
		return errors.New("provision agent: no device ID")
	case hash == "":
		return errors.New("provision agent: no secret hash")
	case cmd == nil || cmd.UUID == "" || cmd.RequestType == "" || len(cmd.Raw) == 0:
		return errors.New("provision agent: the command needs a UUID, a request type and a body")
	}
	return nil
}

// MaxAgentEvents bounds the agent history kept per device.
const MaxAgentEvents = 500

// AgentReport is one report from the agent.
type AgentReport struct {
	TimeZone   string       `json:"time_zone,omitempty"`
	ReceivedAt time.Time    `json:"received_at"`
	Events     []AgentEvent `json:"events,omitempty"`
}

// AgentEvent is one prompt shown or choice made on the Mac.
type AgentEvent struct {
	Kind          string    `json:"kind"`
	At            time.Time `json:"at"`
	Prompt        string    `json:"prompt,omitempty"`
	Choice        string    `json:"choice,omitempty"`
	TargetVersion string    `json:"target_version,omitempty"`
	Path          string    `json:"path,omitempty"`
}

// AgentState is a device's agent: when its secret was set, the Mac's time
// zone, when it last reported and its recent events (oldest first).
type AgentState struct {
	SecretSetAt  time.Time    `json:"secret_set_at,omitzero"`
	TimeZone     string       `json:"time_zone,omitempty"`
	LastReportAt time.Time    `json:"last_report_at,omitzero"`
	Events       []AgentEvent `json:"events,omitempty"`
}
