package fleetmetrics

import (
	"context"
	"errors"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

type auditedEnqueuer interface {
	EnqueueAudited(ctx context.Context, ids []string, cmd *mdm.Command, now time.Time, a *scheduler.AuditEntry) error
}

// EnqueueAudited passes an enqueue with its audit entry through to the
// wrapped store and counts the queued commands, as Enqueue does. It fails
// with errors.ErrUnsupported when the wrapped store has no such method.
func (s *store) EnqueueAudited(ctx context.Context, ids []string, cmd *mdm.Command, now time.Time, a *scheduler.AuditEntry) error {
	next, ok := s.Store.(auditedEnqueuer)
	if !ok {
		return errors.ErrUnsupported
	}
	err := next.EnqueueAudited(ctx, ids, cmd, now, a)
	if err == nil {
		s.m.queued.WithLabelValues(s.m.reqTypes.label(cmd.RequestType)).Add(float64(len(ids)))
	}
	return err
}
