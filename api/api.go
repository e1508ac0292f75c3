// Package api serves Sundial's admin JSON API under /api/v1 and holds the Go
// client the CLI uses.
//
// Every error has one shape, {"error": {"code": "...", "message": "..."}},
// and one function (statusFor) maps codes to HTTP statuses.
package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// Error codes.
const (
	CodeInvalid      = "invalid"
	CodeNotFound     = "not_found"
	CodeConflict     = "conflict"
	CodeUnauthorized = "unauthorized"
	CodeInternal     = "internal"
	CodeUnavailable  = "unavailable" // a server Sundial depends on failed (a release feed)
)

// Error is an admin API error.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func statusFor(code string) int {
	switch code {
	case CodeInvalid:
		return http.StatusBadRequest
	case CodeNotFound:
		return http.StatusNotFound
	case CodeConflict:
		return http.StatusConflict
	case CodeUnauthorized:
		return http.StatusUnauthorized
	case CodeForbidden:
		return http.StatusForbidden
	case CodeUnavailable:
		return http.StatusBadGateway
	default:
		return http.StatusInternalServerError
	}
}

// Store is what the API reads.
type Store interface {
	Device(ctx context.Context, id string) (*mdm.Device, error)
	Devices(ctx context.Context, after string, limit int) ([]*mdm.Device, error)
	Commands(ctx context.Context, id string) ([]*mdm.CommandRecord, error)
	APIKeyByHash(ctx context.Context, hash string) (*storage.APIKey, error)
}

// Enqueuer queues commands and wakes the devices.
type Enqueuer interface {
	Enqueue(ctx context.Context, ids []string, cmd *mdm.Command) error
}

// Server is the admin API.
type Server struct {
	store Store
	enq   Enqueuer
	log   *slog.Logger

	pushCerts PushCerts
	pusher    Pusher
	backup    BackupWriter
	mos       ManagedOS
	cat       Catalog
	keys      KeyStore
	now       func() time.Time
	catSync   CatalogSyncer
	states    StateReader
	rotator   AgentRotator
	members   GroupMembers
	bulkLimit int // 0: MaxBulkEnqueue
	audits    auditLog
	audEnq    AuditedEnqueuer // enqueue and audit in one transaction (enqaudit.go)
	guards    EnrollmentGuards
	zones     DeviceZoner
	retrier   Retrier
	dep       DEP
	hooks     *webhooksAPI
	ringStat  RingStatuser
}

type ctxKey int

const (
	actorKey ctxKey = 1
	keyIDKey ctxKey = 2 // the ID of the API key the request is authenticated with
)

// actor names who made the request (the API key), for the audit log.
func actor(r *http.Request) string {
	if a, ok := r.Context().Value(actorKey).(string); ok {
		return a
	}
	return "unknown"
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// New returns the admin API.
func New(store Store, enq Enqueuer, log *slog.Logger) *Server {
	if store == nil || enq == nil {
		panic("api.New: nil dependency")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{store: store, enq: enq, log: log}
}

// maxAdminBody caps admin request bodies.
const maxAdminBody = 1 << 20

// Register mounts the API on r under /api/v1.
func (s *Server) Register(r *mux.Router) {
	v1 := r.PathPrefix("/api/v1").Subrouter()
	v1.Use(s.authenticate)
	v1.Handle("/devices", s.handle(s.listDevices)).Methods(http.MethodGet)
	v1.Handle("/devices/{id}", s.handle(s.getDevice)).Methods(http.MethodGet)
	v1.Handle("/devices/{id}/commands", s.handle(s.listCommands)).Methods(http.MethodGet)
	v1.Handle("/devices/{id}/commands", s.handle(s.enqueueCommand)).Methods(http.MethodPost)
	s.registerBulk(v1)
	s.registerPush(v1)
	s.registerManagedOS(v1)
	s.registerRollouts(v1)
	s.registerRings(v1)
	s.registerRetry(v1)
	s.registerKeys(v1)
	s.registerCatalogSync(v1)
	s.registerAgent(v1)
	s.registerGuards(v1)
	s.registerDEP(v1)
	s.registerWebhooks(v1)
	if s.backup != nil {
		v1.HandleFunc("/backup", s.serveBackup).Methods(http.MethodGet)
	}
}

// HashKey is how API keys are stored: hex(sha256(key)). Keys are 256-bit
// random values, so a fast hash is enough.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || tok == "" {
			writeError(w, &Error{Code: CodeUnauthorized, Message: "missing bearer API key"})
			return
		}
		k, err := s.store.APIKeyByHash(r.Context(), HashKey(tok))
		if err != nil || !k.RevokedAt.IsZero() {
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				s.log.Error("api key lookup failed", "err", err)
			}
			writeError(w, &Error{Code: CodeUnauthorized, Message: "invalid or revoked API key"})
			return
		}
		name := k.Name
		if name == "" {
			name = "api key " + k.ID
		}
		if role := EffectiveRole(k.Role); !Allows(role, r.Method, r.URL.Path) {
			writeError(w, &Error{Code: CodeForbidden, Message: "this API key's role (" + role + ") does not allow " + r.Method + " " + r.URL.Path})
			return
		}
		ctx := context.WithValue(context.WithValue(r.Context(), actorKey, name), keyIDKey, k.ID)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

type handlerFunc func(r *http.Request) (any, int, error)

func (s *Server) handle(fn handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, status, err := fn(r)
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) {
				switch {
				case errors.Is(err, storage.ErrNotFound):
					ae = &Error{Code: CodeNotFound, Message: err.Error()}
				case errors.Is(err, storage.ErrExists):
					ae = &Error{Code: CodeConflict, Message: err.Error()}
				default:
					s.log.Error("api request failed", "path", r.URL.Path, "err", err)
					ae = &Error{Code: CodeInternal, Message: "internal error"}
				}
			}
			writeError(w, ae)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	})
}

func writeError(w http.ResponseWriter, e *Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(statusFor(e.Code))
	json.NewEncoder(w).Encode(map[string]*Error{"error": e})
}

// DeviceList is a page of devices.
type DeviceList struct {
	Devices []DeviceView `json:"devices"`
	Next    string       `json:"next,omitempty"`
}

// DeviceView is a device with its update state (when the Managed OS engine
// evaluated it).
type DeviceView struct {
	mdm.Device
	GroupID  string    `json:"group_id,omitempty"`
	Phase    string    `json:"phase,omitempty"`
	Target   string    `json:"target,omitempty"`
	Deadline time.Time `json:"deadline,omitzero"`
	Failure  string    `json:"failure,omitempty"`
	// Status is the state an admin sees (scheduler.Status): the phase,
	// deferring or needs-bootstrap-token.
	Status string `json:"status,omitempty"`
	// NotNowCount and NotNowSince say how a deferring Mac defers.
	NotNowCount int       `json:"not_now_count,omitempty"`
	NotNowSince time.Time `json:"not_now_since,omitzero"`
}

// StateReader reads update states in bulk (scheduler.StateStore has it).
type StateReader interface {
	States(ctx context.Context, ids []string) ([]*scheduler.State, error)
}

// deviceFilter is what GET /devices filters on.
type deviceFilter struct {
	group, phase, osVersion string
	status                  string
	pastDeadline, failing   bool
	// search matches a substring of the serial number, name, UDID or ID,
	// ignoring case (see matchSearch).
	search string
}

func (f deviceFilter) any() bool {
	return f.group != "" || f.phase != "" || f.status != "" || f.osVersion != "" || f.pastDeadline || f.failing
}

func (f deviceFilter) match(v DeviceView, now time.Time) bool {
	switch {
	case f.group != "" && v.GroupID != f.group:
	case f.phase != "" && v.Phase != f.phase:
	case f.status != "" && v.Status != f.status:
	case f.osVersion != "" && v.OSVersion != f.osVersion && !strings.HasPrefix(v.OSVersion, f.osVersion+"."):
	case f.pastDeadline && (v.Deadline.IsZero() || !now.After(v.Deadline) || v.Phase == "compliant"):
	case f.failing && v.Failure == "":
	case f.search != "" && !matchSearch(&v.Device, f.search):
	default:
		return true
	}
	return false
}

func (s *Server) listDevices(r *http.Request) (any, int, error) {
	q := r.URL.Query()
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return nil, 0, &Error{Code: CodeInvalid, Message: "limit must be a number from 1 to 1000"}
		}
		limit = n
	}
	f := deviceFilter{group: q.Get("group"), phase: q.Get("phase"), status: q.Get("status"), osVersion: q.Get("os_version")}
	if f.search = strings.ToLower(strings.TrimSpace(q.Get("search"))); len(f.search) > 200 {
		return nil, 0, &Error{Code: CodeInvalid, Message: "search: at most 200 characters"}
	}
	for name, dst := range map[string]*bool{"past_deadline": &f.pastDeadline, "failing": &f.failing} {
		if v := q.Get(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, 0, &Error{Code: CodeInvalid, Message: name + " must be true or false"}
			}
			*dst = b
		}
	}
	if f.any() && s.states == nil {
		return nil, 0, &Error{Code: CodeInvalid, Message: "filters need the Managed OS engine"}
	}
	now := time.Now()
	if s.now != nil {
		now = s.now()
	}
	out := DeviceList{Devices: []DeviceView{}}
	after := q.Get("after")
	// Scan pages until the page is full; a filtered scan stops after
	// 20,000 devices and returns a cursor to continue from.
	for scanned := 0; len(out.Devices) < limit && scanned < 20000; {
		devs, err := s.store.Devices(r.Context(), after, 500)
		if err != nil {
			return nil, 0, err
		}
		if len(devs) == 0 {
			return out, http.StatusOK, nil
		}
		views, err := s.views(r.Context(), devs)
		if err != nil {
			return nil, 0, err
		}
		for _, v := range views {
			scanned++
			after = v.ID
			if f.match(v, now) {
				out.Devices = append(out.Devices, v)
				if len(out.Devices) == limit {
					break
				}
			}
		}
		if len(devs) < 500 && after == devs[len(devs)-1].ID && len(out.Devices) < limit {
			return out, http.StatusOK, nil
		}
	}
	out.Next = after
	return out, http.StatusOK, nil
}

// views joins devices with their update states.
func (s *Server) views(ctx context.Context, devs []*mdm.Device) ([]DeviceView, error) {
	out := make([]DeviceView, len(devs))
	for i, d := range devs {
		out[i] = DeviceView{Device: d.Redacted()}
	}
	if s.states == nil {
		return out, nil
	}
	ids := make([]string, len(devs))
	for i, d := range devs {
		ids[i] = d.ID
	}
	states, err := s.states.States(ctx, ids)
	if err != nil {
		return nil, err
	}
	for i, st := range states {
		if st != nil {
			out[i].GroupID, out[i].Phase, out[i].Target, out[i].Deadline, out[i].Failure =
				st.GroupID, string(st.Phase), st.Target, st.Deadline, st.Failure
			out[i].Status = scheduler.Status(st)
			if scheduler.Deferring(st) {
				out[i].NotNowCount, out[i].NotNowSince = st.NotNowCount, st.NotNowSince
			}
		}
	}
	return out, nil
}

// WithStates adds update states to device listings and enables filters.
func (s *Server) WithStates(sr StateReader) *Server {
	s.states = sr
	return s
}

func (s *Server) getDevice(r *http.Request) (any, int, error) {
	d, err := s.store.Device(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		return nil, 0, err
	}
	return d.Redacted(), http.StatusOK, nil
}

// CommandView is a command in the API: its raw plist as text.
type CommandView struct {
	mdm.CommandRecord
	Raw    string `json:"raw"`
	Result string `json:"result,omitempty"`
}

func viewCommand(c *mdm.CommandRecord) CommandView {
	v := CommandView{CommandRecord: *c, Raw: string(c.Raw), Result: string(c.Result)}
	if _, sealed := mdm.SealedPart(c.Raw); sealed {
		v.Raw = mdm.RedactedRaw
	}
	v.CommandRecord.Raw = nil // shown as text in Raw, never twice
	return v
}

func (s *Server) listCommands(r *http.Request) (any, int, error) {
	id := mux.Vars(r)["id"]
	if _, err := s.store.Device(r.Context(), id); err != nil {
		return nil, 0, err
	}
	recs, err := s.store.Commands(r.Context(), id)
	if err != nil {
		return nil, 0, err
	}
	out := make([]CommandView, 0, len(recs))
	for _, c := range recs {
		out = append(out, viewCommand(c))
	}
	return map[string]any{"commands": out}, http.StatusOK, nil
}

// EnqueueResult answers a command enqueue.
type EnqueueResult struct {
	CommandUUID string `json:"command_uuid"`
	RequestType string `json:"request_type"`
}

func (s *Server) enqueueCommand(r *http.Request) (any, int, error) {
	id := mux.Vars(r)["id"]
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxAdminBody))
	if isTooLarge(err) {
		return nil, 0, &Error{Code: CodeInvalid, Message: maxCommandError}
	}
	if err != nil {
		return nil, 0, &Error{Code: CodeInvalid, Message: fmt.Sprintf("read body: %v", err)}
	}
	cmd, err := mdm.DecodeCommand(body)
	if err != nil {
		return nil, 0, &Error{Code: CodeInvalid, Message: err.Error()}
	}
	if err := CheckCommand(cmd, r.URL.Query().Get("raw") == "true"); err != nil {
		return nil, 0, &Error{Code: CodeInvalid, Message: err.Error()}
	}
	audited, err := s.enqueueAudited(r, id, cmd)
	if err != nil {
		return nil, 0, err
	}
	if !audited {
		if err := s.enq.Enqueue(r.Context(), []string{id}, cmd); err != nil {
			return nil, 0, err
		}
	}
	s.log.Info("command enqueued", "enrollment_id", id, "command_uuid", cmd.UUID, "request_type", cmd.RequestType)
	if !audited {
		// The payload is left out: commands can carry secrets.
		s.audit(r, "command.enqueue", id, nil, EnqueueResult{CommandUUID: cmd.UUID, RequestType: cmd.RequestType})
	}
	return EnqueueResult{CommandUUID: cmd.UUID, RequestType: cmd.RequestType}, http.StatusCreated, nil
}
