package main

import (
	"context"
	"errors"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/service"
)

// provisionStore gives the agent provisioner (agentapi.SecretStore) the
// backend's secret lookup and ProvisionAgent through the MDM service's
// store with its metrics, so that the settings profile it queues is
// counted like every other command.
type provisionStore struct {
	secrets interface {
		AgentSecretHash(ctx context.Context, id string) (string, error)
	}
	counted service.Store
}

func (p provisionStore) AgentSecretHash(ctx context.Context, id string) (string, error) {
	return p.secrets.AgentSecretHash(ctx, id)
}

func (p provisionStore) ProvisionAgent(ctx context.Context, id, hash string, cmd *mdm.Command, now time.Time) error {
	s, ok := p.counted.(interface {
		ProvisionAgent(ctx context.Context, id, hash string, cmd *mdm.Command, now time.Time) error
	})
	if !ok {
		return errors.ErrUnsupported
	}
	return s.ProvisionAgent(ctx, id, hash, cmd, now)
}

// sealFunc adapts a function to agentapi.CommandSealer: the MDM service
// that seals is built after the provisioner, one of its check-in hooks.
type sealFunc func(cmd *mdm.Command) (*mdm.Command, error)

func (f sealFunc) SealCommand(cmd *mdm.Command) (*mdm.Command, error) { return f(cmd) }
