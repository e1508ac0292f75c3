package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// MaxReenrollWindow bounds an admin's approval to re-bind an enrollment:
// long enough to wipe and re-enroll a Mac, short enough not to stay open.
const MaxReenrollWindow = 7 * 24 * time.Hour

// EnrollmentGuards reads enrollment guards and records an admin's approval
// (with its audit entry) to re-bind an enrollment to another certificate.
type EnrollmentGuards interface {
	EnrollmentGuard(ctx context.Context, id string) (*mdm.EnrollmentGuard, error)
	AllowReenroll(ctx context.Context, id string, until time.Time, audit *scheduler.AuditEntry) error
}

// WithEnrollmentGuards enables GET /devices/{id}/enrollment and POST
// /devices/{id}/allow-reenroll.
func (s *Server) WithEnrollmentGuards(g EnrollmentGuards) *Server {
	s.guards = g
	return s
}

func (s *Server) registerGuards(v1 *mux.Router) {
	if s.guards == nil {
		return
	}
	v1.Handle("/devices/{id}/enrollment", s.handle(s.getEnrollment)).Methods(http.MethodGet)
	v1.Handle("/devices/{id}/allow-reenroll", s.handle(s.allowReenroll)).Methods(http.MethodPost)
}

// EnrollmentView is a device's binding: the bound certificate, the expiry
// of an admin's approval to re-bind, and the binding history.
type EnrollmentView struct {
	ID       string `json:"id"`
	CertHash string `json:"cert_hash,omitempty"`
	mdm.EnrollmentGuard
}

func (s *Server) getEnrollment(r *http.Request) (any, int, error) {
	id := mux.Vars(r)["id"]
	d, err := s.store.Device(r.Context(), id)
	if err != nil {
		return nil, 0, err
	}
	g, err := s.guards.EnrollmentGuard(r.Context(), id)
	if err != nil {
		return nil, 0, err
	}
	return EnrollmentView{ID: id, CertHash: d.CertHash, EnrollmentGuard: *g}, http.StatusOK, nil
}

func (s *Server) allowReenroll(r *http.Request) (any, int, error) {
	id := mux.Vars(r)["id"]
	var req struct {
		For string `json:"for"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return nil, 0, err
	}
	d := time.Hour
	if req.For != "" {
		var err error
		if d, err = time.ParseDuration(req.For); err != nil || d <= 0 || d > MaxReenrollWindow {
			return nil, 0, &Error{Code: CodeInvalid, Message: fmt.Sprintf("for: a duration from 1s to %s", MaxReenrollWindow)}
		}
	}
	if _, err := s.store.Device(r.Context(), id); err != nil {
		return nil, 0, err
	}
	now := s.clockNow()
	until := now.Add(d)
	audit, err := scheduler.NewAuditEntry(now, actor(r), "device.allow_reenroll", id, nil, map[string]time.Time{"until": until})
	if err != nil {
		return nil, 0, err
	}
	if err := s.guards.AllowReenroll(r.Context(), id, until, audit); err != nil {
		return nil, 0, err
	}
	s.log.Warn("re-enrollment allowed", "enrollment_id", id, "until", until, "actor", actor(r))
	return map[string]any{"id": id, "reenroll_until": until}, http.StatusOK, nil
}

func (s *Server) clockNow() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

// Enrollment returns a device's binding and its history.
func (c *Client) Enrollment(ctx context.Context, id string) (*EnrollmentView, error) {
	var out EnrollmentView
	return &out, c.doJSON(ctx, http.MethodGet, "/api/v1/devices/"+id+"/enrollment", nil, &out)
}

// AllowReenroll lets the device's next Authenticate re-bind it to another
// certificate within d (0: one hour).
func (c *Client) AllowReenroll(ctx context.Context, id string, d time.Duration) (time.Time, error) {
	req := map[string]string{}
	if d > 0 {
		req["for"] = d.String()
	}
	var out struct {
		Until time.Time `json:"reenroll_until"`
	}
	return out.Until, c.doJSON(ctx, http.MethodPost, "/api/v1/devices/"+id+"/allow-reenroll", req, &out)
}
