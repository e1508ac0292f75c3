package api

import (
	"context"
	"net/http"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// Auditor appends an entry to the audit log (storage's AppendAudit).
type Auditor interface {
	AppendAudit(ctx context.Context, a *scheduler.AuditEntry) error
}

// auditLog is the optional audit log of changes made outside the Managed
// OS manager (which audits its own): raw commands, API keys, the push
// certificate and the release catalog.
type auditLog struct {
	to  Auditor
	now func() time.Time
}

// WithAudit records every change the API makes to what Macs receive in
// the audit log, stamped with now.
func (s *Server) WithAudit(a Auditor, now func() time.Time) *Server {
	if a == nil || now == nil {
		panic("api.WithAudit: nil dependency")
	}
	s.audits = auditLog{to: a, now: now}
	return s
}

// audit records a change the request has made. The change is already
// applied, so a failure to record it is logged, not returned: a client
// told the request failed would retry and apply it twice.
func (s *Server) audit(r *http.Request, action, subject string, before, after any) {
	if s.audits.to == nil {
		return
	}
	a, err := scheduler.NewAuditEntry(s.audits.now().UTC(), actor(r), action, subject, before, after)
	if err == nil {
		err = s.audits.to.AppendAudit(r.Context(), a)
	}
	if err != nil {
		s.log.Error("audit entry not written", "action", action, "subject", subject, "err", err)
	}
}
