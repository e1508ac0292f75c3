package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gorilla/mux"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// ReadinessSource forecasts which Macs will meet their deadline
// (scheduler.Forecaster).
type ReadinessSource interface {
	Readiness(ctx context.Context, group string, days int) (*scheduler.ReadinessReport, error)
}

// DefaultReadinessDays is the forecast's look-ahead when none is given.
const DefaultReadinessDays = 7

// RegisterReadiness mounts, on the root router r behind API-key
// authentication:
//
//	GET /api/v1/reports/readiness?group=G&days=N   a scheduler.ReadinessReport
func (s *Server) RegisterReadiness(r *mux.Router, src ReadinessSource) {
	if src == nil {
		panic("api.RegisterReadiness: nil source")
	}
	v1 := r.PathPrefix("/api/v1").Subrouter()
	v1.Use(s.authenticate)
	v1.Handle("/reports/readiness", s.handle(func(r *http.Request) (any, int, error) {
		q := r.URL.Query()
		days := DefaultReadinessDays
		if v := q.Get("days"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, 0, &Error{Code: CodeInvalid, Message: "days must be a whole number"}
			}
			days = n
		}
		rep, err := src.Readiness(r.Context(), q.Get("group"), days)
		if err != nil {
			return nil, 0, mosError(err)
		}
		return rep, http.StatusOK, nil
	})).Methods(http.MethodGet)
}

// Readiness fetches the readiness forecast of group ("" for every group)
// for the deadlines within days.
func (c *Client) Readiness(ctx context.Context, group string, days int) (*scheduler.ReadinessReport, error) {
	q := url.Values{"days": {strconv.Itoa(days)}}
	if group != "" {
		q.Set("group", group)
	}
	var out scheduler.ReadinessReport
	if err := c.doJSON(ctx, http.MethodGet, "/api/v1/reports/readiness?"+q.Encode(), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
