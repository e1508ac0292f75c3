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
	"github.com/sundial-mdm/sundial/storage"
)

// Error codes.
const (
	CodeInvalid      = "invalid"
	CodeNotFound     = "not_found"
	CodeConflict     = "conflict"
	CodeUnauthorized = "unauthorized"
	CodeInternal     = "internal"
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
}

type ctxKey int

const actorKey ctxKey = 1

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
	s.registerPush(v1)
	s.registerManagedOS(v1)
	s.registerKeys(v1)
	s.registerCatalogSync(v1)
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
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), actorKey, name)))
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
	Devices []mdm.Device `json:"devices"`
	Next    string       `json:"next,omitempty"`
}

func (s *Server) listDevices(r *http.Request) (any, int, error) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return nil, 0, &Error{Code: CodeInvalid, Message: "limit must be a number from 1 to 1000"}
		}
		limit = n
	}
	devs, err := s.store.Devices(r.Context(), r.URL.Query().Get("after"), limit+1)
	if err != nil {
		return nil, 0, err
	}
	out := DeviceList{Devices: []mdm.Device{}}
	for i, d := range devs {
		if i == limit {
			out.Next = devs[i-1].ID
			break
		}
		out.Devices = append(out.Devices, d.Redacted())
	}
	return out, http.StatusOK, nil
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
	return CommandView{CommandRecord: *c, Raw: string(c.Raw), Result: string(c.Result)}
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
	if err != nil {
		return nil, 0, &Error{Code: CodeInvalid, Message: fmt.Sprintf("read body: %v", err)}
	}
	cmd, err := mdm.DecodeCommand(body)
	if err != nil {
		return nil, 0, &Error{Code: CodeInvalid, Message: err.Error()}
	}
	if err := s.enq.Enqueue(r.Context(), []string{id}, cmd); err != nil {
		return nil, 0, err
	}
	s.log.Info("command enqueued", "enrollment_id", id, "command_uuid", cmd.UUID, "request_type", cmd.RequestType)
	return EnqueueResult{CommandUUID: cmd.UUID, RequestType: cmd.RequestType}, http.StatusCreated, nil
}
