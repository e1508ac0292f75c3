package fleetmetrics

import (
	"context"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
)

// AgentStore is the agent provisioner's store (agentapi.SecretStore).
type AgentStore interface {
	AgentSecretHash(ctx context.Context, id string) (string, error)
	ProvisionAgent(ctx context.Context, id, hash string, cmd *mdm.Command, now time.Time) error
}

// AgentStore wraps next so that the settings profiles ProvisionAgent queues
// are counted like every other queued command.
func (m *MDM) AgentStore(next AgentStore) AgentStore { return &agentStore{AgentStore: next, m: m} }

type agentStore struct {
	AgentStore
	m *MDM
}

func (s *agentStore) ProvisionAgent(ctx context.Context, id, hash string, cmd *mdm.Command, now time.Time) error {
	err := s.AgentStore.ProvisionAgent(ctx, id, hash, cmd, now)
	if err == nil {
		s.m.queued.WithLabelValues(s.m.reqTypes.label(cmd.RequestType)).Inc()
	}
	return err
}
