package api

import (
	"context"
	"net/http"

	"github.com/gorilla/mux"
)

// AgentRotator gives a device a fresh agent secret and re-delivers the
// agent's settings profile through MDM.
type AgentRotator interface {
	Provision(ctx context.Context, id string) error
}

// WithAgentRotation enables POST /devices/{id}/agent-secret.
func (s *Server) WithAgentRotation(r AgentRotator) *Server {
	s.rotator = r
	return s
}

func (s *Server) registerAgent(v1 *mux.Router) {
	if s.rotator == nil {
		return
	}
	v1.Handle("/devices/{id}/agent-secret", s.handle(s.rotateAgentSecret)).Methods(http.MethodPost)
}

func (s *Server) rotateAgentSecret(r *http.Request) (any, int, error) {
	id := mux.Vars(r)["id"]
	if _, err := s.store.Device(r.Context(), id); err != nil {
		return nil, 0, err
	}
	if err := s.rotator.Provision(r.Context(), id); err != nil {
		return nil, 0, err
	}
	s.log.Info("agent secret rotated", "enrollment_id", id, "actor", actor(r))
	s.audit(r, "agent.rotate", id, nil, nil) // the secret itself is never logged
	return map[string]string{"rotated": id}, http.StatusOK, nil
}

// RotateAgentSecret rotates a device's agent secret and re-delivers it.
func (c *Client) RotateAgentSecret(ctx context.Context, id string) error {
	return c.doJSON(ctx, http.MethodPost, "/api/v1/devices/"+id+"/agent-secret", nil, nil)
}
