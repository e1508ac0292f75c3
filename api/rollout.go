package api

import (
	"context"
	"net/http"
	"net/url"

	"github.com/gorilla/mux"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// Rollouts is the kill switch the rollout endpoints drive
// (scheduler.Manager). They are served when the ManagedOS given to
// WithManagedOS has it.
type Rollouts interface {
	Pause(ctx context.Context, actor, group, reason string) (*scheduler.Pause, error)
	Resume(ctx context.Context, actor, group string) error
	Pauses(ctx context.Context) ([]scheduler.Pause, error)
}

// pauseBody is the body of a pause.
type pauseBody struct {
	Reason string `json:"reason"`
}

func (s *Server) registerRollouts(v1 *mux.Router) {
	ro, ok := s.mos.(Rollouts)
	if !ok {
		return
	}
	v1.Handle("/pauses", s.handle(func(r *http.Request) (any, int, error) {
		ps, err := ro.Pauses(r.Context())
		if err != nil {
			return nil, 0, err
		}
		if ps == nil {
			ps = []scheduler.Pause{}
		}
		return map[string]any{"pauses": ps}, http.StatusOK, nil
	})).Methods(http.MethodGet)
	pause := func(group func(*http.Request) string) http.Handler {
		return s.handle(func(r *http.Request) (any, int, error) {
			var b pauseBody
			if err := decodeJSON(r, &b); err != nil {
				return nil, 0, err
			}
			p, err := ro.Pause(r.Context(), actor(r), group(r), b.Reason)
			if err != nil {
				return nil, 0, mosError(err)
			}
			return p, http.StatusOK, nil
		})
	}
	resume := func(group func(*http.Request) string) http.Handler {
		return s.handle(func(r *http.Request) (any, int, error) {
			if err := ro.Resume(r.Context(), actor(r), group(r)); err != nil {
				return nil, 0, mosError(err)
			}
			return map[string]string{"resumed": pauseName(group(r))}, http.StatusOK, nil
		})
	}
	fleet := func(*http.Request) string { return scheduler.FleetPause }
	byGroup := func(r *http.Request) string { return mux.Vars(r)["id"] }
	v1.Handle("/pauses/fleet", pause(fleet)).Methods(http.MethodPut)
	v1.Handle("/pauses/fleet", resume(fleet)).Methods(http.MethodDelete)
	v1.Handle("/pauses/groups/{id}", pause(byGroup)).Methods(http.MethodPut)
	v1.Handle("/pauses/groups/{id}", resume(byGroup)).Methods(http.MethodDelete)
}

func pauseName(group string) string {
	if group == scheduler.FleetPause {
		return "fleet"
	}
	return group
}

func pausePath(group string) string {
	if group == scheduler.FleetPause {
		return "/api/v1/pauses/fleet"
	}
	return "/api/v1/pauses/groups/" + url.PathEscape(group)
}

// Pause stops every forced step of group (scheduler.FleetPause: of the
// whole fleet) until Resume.
func (c *Client) Pause(ctx context.Context, group, reason string) (*scheduler.Pause, error) {
	var out scheduler.Pause
	if err := c.doJSON(ctx, http.MethodPut, pausePath(group), pauseBody{Reason: reason}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Resume ends group's pause; the Macs it held get fresh minimum notice.
func (c *Client) Resume(ctx context.Context, group string) error {
	return c.doJSON(ctx, http.MethodDelete, pausePath(group), nil, nil)
}

// Pauses lists the pauses in force.
func (c *Client) Pauses(ctx context.Context) ([]scheduler.Pause, error) {
	var out struct {
		Pauses []scheduler.Pause `json:"pauses"`
	}
	return out.Pauses, c.doJSON(ctx, http.MethodGet, "/api/v1/pauses", nil, &out)
}
