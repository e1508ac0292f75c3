package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// AuditedEnqueuer queues a command and appends its audit entry, to the
// audit log WithAudit names, in one transaction. It returns
// errors.ErrUnsupported when its store cannot, and the server then
// enqueues and audits one after the other.
type AuditedEnqueuer interface {
	EnqueueAudited(ctx context.Context, ids []string, cmd *mdm.Command, a *scheduler.AuditEntry) error
}

// WithAuditedEnqueue makes a single-device command enqueue one write
// transaction instead of two (issue 24: each commit allocates a database
// page, and the round trip's second largest share was this audit entry).
func (s *Server) WithAuditedEnqueue(e AuditedEnqueuer) *Server {
	s.audEnq = e
	return s
}

// enqueueAudited queues cmd for id together with its audit entry, and
// reports whether it did; false with no error means the caller enqueues
// and audits on its own.
func (s *Server) enqueueAudited(r *http.Request, id string, cmd *mdm.Command) (bool, error) {
	if s.audEnq == nil || s.audits.to == nil {
		return false, nil
	}
	// The payload is left out: commands can carry secrets.
	a, err := scheduler.NewAuditEntry(s.audits.now().UTC(), actor(r), "command.enqueue", id, nil,
		EnqueueResult{CommandUUID: cmd.UUID, RequestType: cmd.RequestType})
	if err != nil {
		return false, nil // the separate path logs why the entry cannot be built
	}
	err = s.audEnq.EnqueueAudited(r.Context(), []string{id}, cmd, a)
	if errors.Is(err, errors.ErrUnsupported) {
		return false, nil
	}
	return true, err
}
