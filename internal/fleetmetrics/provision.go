package fleetmetrics

import (
	"context"
	"errors"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
)

type agentProvisioner interface {
	ProvisionAgent(ctx context.Context, id, hash string, cmd *mdm.Command, now time.Time) error
}

// ProvisionAgent passes an agent secret with the command that carries it
// through to the wrapped store and counts the queued command, as Enqueue
// does. It fails with errors.ErrUnsupported when the wrapped store has no
// such method.
func (s *store) ProvisionAgent(ctx context.Context, id, hash string, cmd *mdm.Command, now time.Time) error {
	next, ok := s.Store.(agentProvisioner)
	if !ok {
		return errors.ErrUnsupported
	}
	err := next.ProvisionAgent(ctx, id, hash, cmd, now)
	if err == nil {
		s.m.queued.WithLabelValues(s.m.reqTypes.label(cmd.RequestType)).Inc()
	}
	return err
}
