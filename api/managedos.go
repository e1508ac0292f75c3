package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/gorilla/mux"

	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// ManagedOS is what the Managed OS endpoints drive (scheduler.Manager).
type ManagedOS interface {
	Groups(ctx context.Context) ([]scheduler.Group, error)
	CreateGroup(ctx context.Context, actor, id, name string) (*scheduler.Group, error)
	DeleteGroup(ctx context.Context, actor, id string) error
	AssignDevices(ctx context.Context, actor, group string, ids []string) error
	Policy(ctx context.Context, group string) (*scheduler.PolicyRecord, error)
	SetPolicy(ctx context.Context, actor, group string, p softwareupdate.Policy) (*scheduler.PolicyRecord, error)
	SetException(ctx context.Context, actor string, scope scheduler.ExceptionScope, id string, ex softwareupdate.Exception) (*scheduler.ExceptionRecord, error)
	ClearException(ctx context.Context, actor string, scope scheduler.ExceptionScope, id string) error
	Exceptions(ctx context.Context) ([]scheduler.ExceptionRecord, error)
	Device(ctx context.Context, id string, historyLimit int) (*scheduler.DeviceReport, error)
	Audit(ctx context.Context, after uint64, limit int) ([]scheduler.AuditEntry, error)
}

// Catalog lists the release catalog.
type Catalog interface {
	Releases() []catalog.Release
}

// WithManagedOS enables the groups, policies, exceptions, device update and
// audit endpoints.
func (s *Server) WithManagedOS(m ManagedOS, cat Catalog) *Server {
	s.mos, s.cat = m, cat
	return s
}

func (s *Server) registerManagedOS(v1 *mux.Router) {
	if s.mos == nil {
		return
	}
	v1.Handle("/groups", s.handle(s.listGroups)).Methods(http.MethodGet)
	v1.Handle("/groups", s.handle(s.createGroup)).Methods(http.MethodPost)
	v1.Handle("/groups/{id}", s.handle(s.deleteGroup)).Methods(http.MethodDelete)
	v1.Handle("/groups/{id}/devices", s.handle(s.assignDevices)).Methods(http.MethodPost)
	v1.Handle("/groups/{id}/policy", s.handle(s.getPolicy)).Methods(http.MethodGet)
	v1.Handle("/groups/{id}/policy", s.handle(s.setPolicy)).Methods(http.MethodPut)
	v1.Handle("/devices/{id}/update", s.handle(s.deviceUpdate)).Methods(http.MethodGet)
	v1.Handle("/exceptions", s.handle(s.listExceptions)).Methods(http.MethodGet)
	v1.Handle("/exceptions/{scope}/{id}", s.handle(s.setException)).Methods(http.MethodPut)
	v1.Handle("/exceptions/{scope}/{id}", s.handle(s.clearException)).Methods(http.MethodDelete)
	v1.Handle("/audit", s.handle(s.listAudit)).Methods(http.MethodGet)
	if s.cat != nil {
		v1.Handle("/catalog", s.handle(s.listCatalog)).Methods(http.MethodGet)
	}
}

// mosError maps Managed OS errors onto API errors.
func mosError(err error) error {
	var ve *softwareupdate.ValidationError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ve), errors.Is(err, scheduler.ErrInvalid):
		return &Error{Code: CodeInvalid, Message: err.Error()}
	case errors.Is(err, scheduler.ErrConflict):
		return &Error{Code: CodeConflict, Message: err.Error()}
	}
	return err
}

func decodeJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxAdminBody))
	if err != nil {
		return &Error{Code: CodeInvalid, Message: "read body: " + err.Error()}
	}
	dec := json.NewDecoder(bytesReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &Error{Code: CodeInvalid, Message: "body: " + err.Error()}
	}
	return nil
}

func (s *Server) listGroups(r *http.Request) (any, int, error) {
	gs, err := s.mos.Groups(r.Context())
	if err != nil {
		return nil, 0, err
	}
	return map[string]any{"groups": gs}, http.StatusOK, nil
}

func (s *Server) createGroup(r *http.Request) (any, int, error) {
	var req struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return nil, 0, err
	}
	g, err := s.mos.CreateGroup(r.Context(), actor(r), req.ID, req.Name)
	if err != nil {
		return nil, 0, mosError(err)
	}
	return g, http.StatusCreated, nil
}

func (s *Server) deleteGroup(r *http.Request) (any, int, error) {
	if err := s.mos.DeleteGroup(r.Context(), actor(r), mux.Vars(r)["id"]); err != nil {
		return nil, 0, mosError(err)
	}
	return map[string]string{"deleted": mux.Vars(r)["id"]}, http.StatusOK, nil
}

func (s *Server) assignDevices(r *http.Request) (any, int, error) {
	var req struct {
		DeviceIDs []string `json:"device_ids"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return nil, 0, err
	}
	if len(req.DeviceIDs) == 0 || len(req.DeviceIDs) > 10000 {
		return nil, 0, &Error{Code: CodeInvalid, Message: "device_ids: 1 to 10000 device IDs"}
	}
	for _, id := range req.DeviceIDs {
		if _, err := s.store.Device(r.Context(), id); err != nil {
			return nil, 0, err
		}
	}
	if err := s.mos.AssignDevices(r.Context(), actor(r), mux.Vars(r)["id"], req.DeviceIDs); err != nil {
		return nil, 0, mosError(err)
	}
	return map[string]any{"group": mux.Vars(r)["id"], "assigned": len(req.DeviceIDs)}, http.StatusOK, nil
}

func (s *Server) getPolicy(r *http.Request) (any, int, error) {
	p, err := s.mos.Policy(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		return nil, 0, mosError(err)
	}
	return p, http.StatusOK, nil
}

func (s *Server) setPolicy(r *http.Request) (any, int, error) {
	var p softwareupdate.Policy
	if err := decodeJSON(r, &p); err != nil {
		return nil, 0, err
	}
	rec, err := s.mos.SetPolicy(r.Context(), actor(r), mux.Vars(r)["id"], p)
	if err != nil {
		return nil, 0, mosError(err)
	}
	s.log.Info("policy set", "group", rec.GroupID, "revision", rec.Revision, "actor", actor(r))
	return rec, http.StatusOK, nil
}

func (s *Server) deviceUpdate(r *http.Request) (any, int, error) {
	limit := 50
	if v := r.URL.Query().Get("history"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 10000 {
			return nil, 0, &Error{Code: CodeInvalid, Message: "history must be 0 to 10000"}
		}
		limit = n
	}
	id := mux.Vars(r)["id"]
	if _, err := s.store.Device(r.Context(), id); err != nil {
		return nil, 0, err
	}
	rep, err := s.mos.Device(r.Context(), id, limit)
	if err != nil {
		return nil, 0, mosError(err)
	}
	if s.zones != nil {
		rep.DeviceTimeZone = s.zones.DeviceZone(r.Context(), id)
	}
	return rep, http.StatusOK, nil
}

func scopeOf(r *http.Request) (scheduler.ExceptionScope, error) {
	switch sc := scheduler.ExceptionScope(mux.Vars(r)["scope"]); sc {
	case scheduler.ScopeDevice, scheduler.ScopeGroup:
		return sc, nil
	}
	return "", &Error{Code: CodeInvalid, Message: "scope must be device or group"}
}

func (s *Server) listExceptions(r *http.Request) (any, int, error) {
	ex, err := s.mos.Exceptions(r.Context())
	if err != nil {
		return nil, 0, err
	}
	return map[string]any{"exceptions": ex}, http.StatusOK, nil
}

func (s *Server) setException(r *http.Request) (any, int, error) {
	scope, err := scopeOf(r)
	if err != nil {
		return nil, 0, err
	}
	var ex softwareupdate.Exception
	if err := decodeJSON(r, &ex); err != nil {
		return nil, 0, err
	}
	if ex.GrantedBy == "" {
		ex.GrantedBy = actor(r)
	}
	rec, err := s.mos.SetException(r.Context(), actor(r), scope, mux.Vars(r)["id"], ex)
	if err != nil {
		return nil, 0, mosError(err)
	}
	return rec, http.StatusOK, nil
}

func (s *Server) clearException(r *http.Request) (any, int, error) {
	scope, err := scopeOf(r)
	if err != nil {
		return nil, 0, err
	}
	if err := s.mos.ClearException(r.Context(), actor(r), scope, mux.Vars(r)["id"]); err != nil {
		return nil, 0, mosError(err)
	}
	return map[string]string{"cleared": mux.Vars(r)["id"]}, http.StatusOK, nil
}

func (s *Server) listAudit(r *http.Request) (any, int, error) {
	q := r.URL.Query()
	after, limit := uint64(0), 100
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return nil, 0, &Error{Code: CodeInvalid, Message: "after must be a sequence number"}
		}
		after = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return nil, 0, &Error{Code: CodeInvalid, Message: "limit must be 1 to 1000"}
		}
		limit = n
	}
	entries, err := s.mos.Audit(r.Context(), after, limit)
	if err != nil {
		return nil, 0, err
	}
	if entries == nil {
		entries = []scheduler.AuditEntry{}
	}
	return map[string]any{"entries": entries}, http.StatusOK, nil
}

// ReleaseView is a catalog release in the API.
type ReleaseView struct {
	Version          string `json:"version"`
	Build            string `json:"build,omitempty"`
	PostingDate      string `json:"posting_date,omitempty"`
	Supplemental     bool   `json:"supplemental,omitempty"`
	SupportedDevices int    `json:"supported_devices"`
	ActivelyExploit  int    `json:"actively_exploited_cves,omitempty"`
}

func (s *Server) listCatalog(r *http.Request) (any, int, error) {
	out := []ReleaseView{}
	for _, rel := range s.cat.Releases() {
		v := ReleaseView{Version: rel.Version.String(), Build: rel.Build, Supplemental: rel.Supplemental,
			SupportedDevices: len(rel.SupportedDevices), ActivelyExploit: len(rel.ActivelyExploitedCVEs)}
		if !rel.PostingDate.IsZero() {
			v.PostingDate = rel.PostingDate.Format("2006-01-02")
		}
		out = append(out, v)
	}
	return map[string]any{"releases": out}, http.StatusOK, nil
}
