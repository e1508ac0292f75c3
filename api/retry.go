package api

import (
	"context"
	"net/http"
	"net/url"

	"github.com/gorilla/mux"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// Retrier retries failed Macs now, audited (scheduler.Retries).
type Retrier interface {
	RetryDevice(ctx context.Context, actor, id string) (*scheduler.RetryOutcome, error)
	RetryGroup(ctx context.Context, actor, group string) ([]scheduler.RetryOutcome, error)
}

// WithRetrier enables POST /devices/{id}/retry and /groups/{id}/retry.
func (s *Server) WithRetrier(r Retrier) *Server {
	s.retrier = r
	return s
}

func (s *Server) registerRetry(v1 *mux.Router) {
	if s.retrier == nil {
		return
	}
	v1.Handle("/devices/{id}/retry", s.handle(s.retryDevice)).Methods(http.MethodPost)
	v1.Handle("/groups/{id}/retry", s.handle(s.retryGroup)).Methods(http.MethodPost)
}

func (s *Server) retryDevice(r *http.Request) (any, int, error) {
	out, err := s.retrier.RetryDevice(r.Context(), actor(r), mux.Vars(r)["id"])
	if err != nil {
		return nil, 0, mosError(err)
	}
	return out, http.StatusOK, nil
}

// GroupRetry is the answer of POST /groups/{id}/retry.
type GroupRetry struct {
	Group   string                   `json:"group"`
	Devices []scheduler.RetryOutcome `json:"devices"`
}

func (s *Server) retryGroup(r *http.Request) (any, int, error) {
	g := mux.Vars(r)["id"]
	outs, err := s.retrier.RetryGroup(r.Context(), actor(r), g)
	if err != nil {
		return nil, 0, mosError(err)
	}
	if outs == nil {
		outs = []scheduler.RetryOutcome{}
	}
	return GroupRetry{Group: g, Devices: outs}, http.StatusOK, nil
}

// RetryDevice clears a device's failure and evaluates it now.
func (c *Client) RetryDevice(ctx context.Context, id string) (*scheduler.RetryOutcome, error) {
	var out scheduler.RetryOutcome
	return &out, c.doJSON(ctx, http.MethodPost, "/api/v1/devices/"+url.PathEscape(id)+"/retry", nil, &out)
}

// RetryGroup retries every failed device of a group now.
func (c *Client) RetryGroup(ctx context.Context, group string) (*GroupRetry, error) {
	var out GroupRetry
	return &out, c.doJSON(ctx, http.MethodPost, "/api/v1/groups/"+url.PathEscape(group)+"/retry", nil, &out)
}
