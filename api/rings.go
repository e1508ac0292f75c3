package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/gorilla/mux"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// RingPlanner keeps the health-gated ring plans (scheduler.Manager). The
// ring endpoints are served when the ManagedOS given to WithManagedOS has
// it.
type RingPlanner interface {
	RingPlans(ctx context.Context) ([]scheduler.RingPlan, error)
	SetRingPlan(ctx context.Context, actor string, p scheduler.RingPlan) (*scheduler.RingPlan, error)
	DeleteRingPlan(ctx context.Context, actor, id string) error
	PromoteRing(ctx context.Context, actor, id, group string) (*scheduler.RingPlan, error)
}

// RingStatuser is the scheduler's last gate evaluation, by plan ID.
type RingStatuser interface {
	RingStatuses() map[string][]scheduler.RingStatus
}

// WithRingStatuses adds each ring's gate state (held, why, counts) to the
// ring endpoints; without it they show the plans and their progress only.
func (s *Server) WithRingStatuses(rs RingStatuser) *Server {
	s.ringStat = rs
	return s
}

// RingGateSettings is a plan's gate with its defaults filled in.
type RingGateSettings struct {
	MinCompliantPercent int `json:"min_compliant_percent"`
	MaxFailedPercent    int `json:"max_failed_percent"`
	MaxWaitHours        int `json:"max_wait_hours"`
}

// RingView is one ring of a plan as the API shows it.
type RingView struct {
	Group    string               `json:"group"`
	Started  *time.Time           `json:"started,omitempty"`
	Promoted *scheduler.Promotion `json:"promoted,omitempty"`
	// Held: an earlier ring's gate keeps this ring's notice from starting;
	// HeldBy names that ring and Reason says why.
	Held   bool   `json:"held"`
	HeldBy string `json:"held_by,omitempty"`
	Reason string `json:"reason,omitempty"`
	// NeedsPromotion: the gate in front of this ring waited its maximum;
	// only `rings promote` starts this ring now.
	NeedsPromotion bool                   `json:"needs_promotion"`
	Tally          *scheduler.RingTally   `json:"tally,omitempty"`
	Gate           *scheduler.GateVerdict `json:"gate,omitempty"`
}

// RingPlanView is a plan with each ring's state.
type RingPlanView struct {
	ID     string           `json:"id"`
	Groups []string         `json:"groups"`
	Gate   RingGateSettings `json:"gate"`
	// Evaluated: the rings' held state and counts come from a gate
	// evaluation of this plan as it is now (false until the scheduler's
	// next pass after a change, or on a replica that runs no passes).
	Evaluated bool       `json:"evaluated"`
	Rings     []RingView `json:"rings"`
}

// RingPlanBody is the body of PUT /api/v1/rings/{plan}: the groups in
// rollout order and the gate (omitted fields take the defaults).
type RingPlanBody struct {
	Groups []string           `json:"groups"`
	Gate   scheduler.RingGate `json:"gate"`
}

// ringPromoteBody names the held ring to start.
type ringPromoteBody struct {
	Group string `json:"group"`
}

func (s *Server) registerRings(v1 *mux.Router) {
	rp, ok := s.mos.(RingPlanner)
	if !ok {
		return
	}
	v1.Handle("/rings", s.handle(func(r *http.Request) (any, int, error) {
		ps, err := rp.RingPlans(r.Context())
		if err != nil {
			return nil, 0, err
		}
		st := s.ringStatuses()
		out := make([]RingPlanView, 0, len(ps))
		for _, p := range ps {
			out = append(out, ringView(p, st[p.ID]))
		}
		return map[string]any{"plans": out}, http.StatusOK, nil
	})).Methods(http.MethodGet)
	v1.Handle("/rings/{plan}", s.handle(func(r *http.Request) (any, int, error) {
		p, err := findRingPlan(r.Context(), rp, mux.Vars(r)["plan"])
		if err != nil {
			return nil, 0, err
		}
		return ringView(*p, s.ringStatuses()[p.ID]), http.StatusOK, nil
	})).Methods(http.MethodGet)
	v1.Handle("/rings/{plan}", s.handle(func(r *http.Request) (any, int, error) {
		var b RingPlanBody
		if err := decodeJSON(r, &b); err != nil {
			return nil, 0, err
		}
		p, err := rp.SetRingPlan(r.Context(), actor(r), scheduler.RingPlan{ID: mux.Vars(r)["plan"], Groups: b.Groups, Gate: b.Gate})
		if err != nil {
			return nil, 0, ringError(err)
		}
		return ringView(*p, s.ringStatuses()[p.ID]), http.StatusOK, nil
	})).Methods(http.MethodPut)
	v1.Handle("/rings/{plan}", s.handle(func(r *http.Request) (any, int, error) {
		id := mux.Vars(r)["plan"]
		if err := rp.DeleteRingPlan(r.Context(), actor(r), id); err != nil {
			return nil, 0, ringError(err)
		}
		return map[string]string{"removed": id}, http.StatusOK, nil
	})).Methods(http.MethodDelete)
	v1.Handle("/rings/{plan}/promote", s.handle(func(r *http.Request) (any, int, error) {
		var b ringPromoteBody
		if err := decodeJSON(r, &b); err != nil {
			return nil, 0, err
		}
		p, err := findRingPlan(r.Context(), rp, mux.Vars(r)["plan"])
		if err != nil {
			return nil, 0, err
		}
		before, err := ringBefore(*p, b.Group)
		if err != nil {
			return nil, 0, err
		}
		np, err := rp.PromoteRing(r.Context(), actor(r), p.ID, before)
		if err != nil {
			return nil, 0, ringError(err)
		}
		return ringView(*np, s.ringStatuses()[np.ID]), http.StatusOK, nil
	})).Methods(http.MethodPost)
}

// ringBefore returns the ring whose gate holds group: promoting group
// opens that gate. A ring before that is itself held must be promoted
// first, else opening its gate would start nothing; the first ring starts
// at the next pass in any case.
func ringBefore(p scheduler.RingPlan, group string) (string, error) {
	for i, g := range p.Groups {
		if g != group {
			continue
		}
		if i == 0 {
			return "", &Error{Code: CodeInvalid, Message: fmt.Sprintf("group %s is the first ring of plan %s: it needs no promotion", g, p.ID)}
		}
		prev := p.Groups[i-1]
		if i-1 > 0 && i-1 < len(p.States) && p.States[i-1].Started.IsZero() {
			return "", &Error{Code: CodeConflict, Message: fmt.Sprintf("ring %s before %s has not started yet: promote %s first", prev, g, prev)}
		}
		return prev, nil
	}
	return "", &Error{Code: CodeInvalid, Message: fmt.Sprintf("group %q is not a ring of plan %s (rings: %v)", truncateID(group), p.ID, p.Groups)}
}

func truncateID(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

func findRingPlan(ctx context.Context, rp RingPlanner, id string) (*scheduler.RingPlan, error) {
	ps, err := rp.RingPlans(ctx)
	if err != nil {
		return nil, err
	}
	for i := range ps {
		if ps[i].ID == id {
			return &ps[i], nil
		}
	}
	return nil, &Error{Code: CodeNotFound, Message: fmt.Sprintf("ring plan %q not found", truncateID(id))}
}

// ringError maps a gate out of range to invalid, like the plan's other
// validation errors; an unknown group or plan stays not found.
func ringError(err error) error {
	if errors.Is(err, scheduler.ErrInvalidGate) {
		return &Error{Code: CodeInvalid, Message: err.Error()}
	}
	if errors.Is(err, storage.ErrNotFound) {
		return &Error{Code: CodeNotFound, Message: err.Error()}
	}
	return mosError(err)
}

func (s *Server) ringStatuses() map[string][]scheduler.RingStatus {
	if s.ringStat == nil {
		return nil
	}
	return s.ringStat.RingStatuses()
}

func gateSettings(g scheduler.RingGate) RingGateSettings {
	or := func(p *int, def int) int {
		if p == nil {
			return def
		}
		return *p
	}
	return RingGateSettings{
		MinCompliantPercent: or(g.MinCompliantPercent, scheduler.DefaultGateMinCompliantPercent),
		MaxFailedPercent:    or(g.MaxFailedPercent, scheduler.DefaultGateMaxFailedPercent),
		MaxWaitHours:        or(g.MaxWaitHours, int(scheduler.DefaultGateMaxWait/time.Hour)),
	}
}

// ringView joins a stored plan with its last gate evaluation. The
// evaluation is used only when it covers the plan's groups in order (a
// plan just changed is shown without held states until the next pass).
func ringView(p scheduler.RingPlan, st []scheduler.RingStatus) RingPlanView {
	v := RingPlanView{ID: p.ID, Groups: p.Groups, Gate: gateSettings(p.Gate), Rings: make([]RingView, len(p.Groups))}
	v.Evaluated = len(st) == len(p.Groups)
	for i := range st {
		if v.Evaluated && st[i].Name != p.Groups[i] {
			v.Evaluated = false
		}
	}
	for i, g := range p.Groups {
		r := RingView{Group: g}
		if i < len(p.States) {
			if t := p.States[i].Started; !t.IsZero() {
				r.Started = &t
			}
			r.Promoted = p.States[i].Promoted
		}
		if v.Evaluated {
			rs := st[i]
			r.Held, r.HeldBy, r.Reason = !rs.MayNotify, rs.HeldBy, rs.Reason
			tally := rs.Tally
			r.Tally = &tally
			if rs.MayNotify {
				gate := rs.Gate
				r.Gate = &gate
			}
			r.NeedsPromotion = r.Held && i > 0 && rs.HeldBy == p.Groups[i-1] && st[i-1].Gate.NeedsPromotion
		}
		v.Rings[i] = r
	}
	return v
}

func ringPath(plan string) string { return "/api/v1/rings/" + url.PathEscape(plan) }

// RingPlans lists every ring plan with its rings' state.
func (c *Client) RingPlans(ctx context.Context) ([]RingPlanView, error) {
	var out struct {
		Plans []RingPlanView `json:"plans"`
	}
	return out.Plans, c.doJSON(ctx, http.MethodGet, "/api/v1/rings", nil, &out)
}

// RingPlan shows one ring plan with its rings' state.
func (c *Client) RingPlan(ctx context.Context, plan string) (*RingPlanView, error) {
	var out RingPlanView
	if err := c.doJSON(ctx, http.MethodGet, ringPath(plan), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SetRingPlan creates or replaces a ring plan.
func (c *Client) SetRingPlan(ctx context.Context, plan string, b RingPlanBody) (*RingPlanView, error) {
	var out RingPlanView
	if err := c.doJSON(ctx, http.MethodPut, ringPath(plan), b, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteRingPlan removes a ring plan: its groups are no longer gated.
func (c *Client) DeleteRingPlan(ctx context.Context, plan string) error {
	return c.doJSON(ctx, http.MethodDelete, ringPath(plan), nil, nil)
}

// PromoteRing starts held ring group of plan by hand, whatever the gate
// in front of it says.
func (c *Client) PromoteRing(ctx context.Context, plan, group string) (*RingPlanView, error) {
	var out RingPlanView
	if err := c.doJSON(ctx, http.MethodPost, ringPath(plan)+"/promote", ringPromoteBody{Group: group}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
