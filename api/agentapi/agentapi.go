// Package agentapi serves the companion agent's API under /agent/v1: the
// agent fetches its plan and reports the Mac's time zone and what the user
// saw and chose.
//
// Each device has its own agent secret, delivered in a managed-preferences
// profile through the MDM InstallProfile command (see Provisioner); only its
// hash is stored. Requests carry
//
//	Authorization: Sundial-Agent <enrollment id>:<secret>
package agentapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/sundial-mdm/sundial/agent"
	"github.com/sundial-mdm/sundial/storage"
)

// Store keeps agent secrets and reports.
type Store interface {
	AgentSecretHash(ctx context.Context, id string) (string, error)
	AppendAgentReport(ctx context.Context, id string, rep storage.AgentReport, now time.Time) error
	AgentState(ctx context.Context, id string) (*storage.AgentState, error)
}

// Planner answers a device's plan.
type Planner interface {
	Plan(ctx context.Context, id string) (agent.Plan, error)
}

// Starter starts an install when the user clicks Start Now on a Mac on the
// legacy path (Sundial sends ScheduleOSUpdate InstallASAP and pushes).
type Starter interface {
	StartNow(ctx context.Context, id string) error
}

// Clock tells the time.
type Clock interface{ Now() time.Time }

// Server is the agent API.
type Server struct {
	store   Store
	planner Planner
	starter Starter
	clock   Clock
	log     *slog.Logger
	onZone  func(ctx context.Context, id, tz string)
}

// WithZoneObserver sets a function called when a Mac's reported time zone
// changes (a declarative deadline is written in the Mac's local time).
func (s *Server) WithZoneObserver(f func(ctx context.Context, id, tz string)) *Server {
	s.onZone = f
	return s
}

// New returns the agent API.
func New(store Store, planner Planner, starter Starter, clk Clock, log *slog.Logger) *Server {
	if store == nil || planner == nil || starter == nil || clk == nil {
		panic("agentapi.New: nil dependency")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{store: store, planner: planner, starter: starter, clock: clk, log: log}
}

// Register mounts the API on r.
func (s *Server) Register(r *mux.Router) {
	v1 := r.PathPrefix("/agent/v1").Subrouter()
	v1.Handle("/plan", s.authed(s.plan)).Methods(http.MethodGet)
	v1.Handle("/report", s.authed(s.report)).Methods(http.MethodPost)
}

// HashSecret is how agent secrets are stored.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// AuthScheme is the Authorization scheme of agent requests.
const AuthScheme = "Sundial-Agent"

type authedFunc func(w http.ResponseWriter, r *http.Request, id string)

func (s *Server) authed(fn authedFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cred, ok := strings.CutPrefix(r.Header.Get("Authorization"), AuthScheme+" ")
		id, secret, ok2 := strings.Cut(cred, ":")
		if !ok || !ok2 || id == "" || secret == "" || len(cred) > 512 {
			httpError(w, http.StatusUnauthorized, "missing agent credentials")
			return
		}
		want, err := s.store.AgentSecretHash(r.Context(), id)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			s.log.Error("agent secret lookup failed", "enrollment_id", id, "err", err)
			httpError(w, http.StatusInternalServerError, "internal error")
			return
		}
		have := HashSecret(secret)
		if err != nil || subtle.ConstantTimeCompare([]byte(have), []byte(want)) != 1 {
			s.log.Warn("agent request refused", "enrollment_id", id, "remote", r.RemoteAddr)
			httpError(w, http.StatusUnauthorized, "invalid agent credentials")
			return
		}
		fn(w, r, id)
	})
}

func httpError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func (s *Server) plan(w http.ResponseWriter, r *http.Request, id string) {
	// The agent names the Mac's time zone with every plan request; a
	// change is stored (and re-plans a declarative deadline).
	if tz := r.URL.Query().Get("time_zone"); tz != "" {
		if _, err := time.LoadLocation(tz); err != nil || len(tz) > 64 {
			httpError(w, http.StatusBadRequest, "unknown time zone")
			return
		}
		st, err := s.store.AgentState(r.Context(), id)
		if err == nil && st.TimeZone != tz {
			if err := s.store.AppendAgentReport(r.Context(), id, storage.AgentReport{TimeZone: tz, ReceivedAt: s.clock.Now()}, s.clock.Now()); err != nil {
				s.log.Error("agent time zone not stored", "enrollment_id", id, "err", err)
			} else {
				s.log.Info("mac time zone changed", "enrollment_id", id, "time_zone", tz)
				if s.onZone != nil {
					s.onZone(r.Context(), id, tz)
				}
			}
		}
	}
	p, err := s.planner.Plan(r.Context(), id)
	if err != nil {
		s.log.Error("agent plan failed", "enrollment_id", id, "err", err)
		httpError(w, http.StatusInternalServerError, "internal error")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(p)
}

// Report is what the agent posts.
type Report struct {
	// TimeZone is the Mac's IANA time zone, e.g. "Europe/Berlin".
	TimeZone string        `json:"time_zone,omitempty"`
	Events   []agent.Event `json:"events"`
}

// maxReport caps a report body; maxEvents the events in one report.
const (
	maxReport = 256 << 10
	maxEvents = 512
)

func (s *Server) report(w http.ResponseWriter, r *http.Request, id string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxReport))
	if err != nil {
		httpError(w, http.StatusRequestEntityTooLarge, "report too large")
		return
	}
	var rep Report
	if err := json.Unmarshal(body, &rep); err != nil {
		httpError(w, http.StatusBadRequest, "report must be JSON: "+err.Error())
		return
	}
	if len(rep.Events) > maxEvents {
		httpError(w, http.StatusBadRequest, "too many events in one report")
		return
	}
	if rep.TimeZone != "" {
		if _, err := time.LoadLocation(rep.TimeZone); err != nil || len(rep.TimeZone) > 64 {
			httpError(w, http.StatusBadRequest, "unknown time zone")
			return
		}
	}
	now := s.clock.Now()
	stored := storage.AgentReport{TimeZone: rep.TimeZone, ReceivedAt: now}
	start := false
	for _, e := range rep.Events {
		ev := storage.AgentEvent{Kind: string(e.Kind), At: e.At, Prompt: string(e.Prompt), Choice: string(e.Choice),
			TargetVersion: e.TargetVersion, Path: e.Path}
		stored.Events = append(stored.Events, ev)
		if e.Kind == agent.EventInstallRequested && e.Path != agent.PathDeclarative {
			start = true
		}
	}
	oldZone := ""
	if rep.TimeZone != "" {
		if st, err := s.store.AgentState(r.Context(), id); err == nil {
			oldZone = st.TimeZone
		}
	}
	if err := s.store.AppendAgentReport(r.Context(), id, stored, now); err != nil {
		s.log.Error("agent report not stored", "enrollment_id", id, "err", err)
		httpError(w, http.StatusInternalServerError, "internal error")
		return
	}
	if rep.TimeZone != "" && rep.TimeZone != oldZone && s.onZone != nil {
		s.log.Info("mac time zone changed", "enrollment_id", id, "time_zone", rep.TimeZone)
		s.onZone(r.Context(), id, rep.TimeZone)
	}
	if start {
		if err := s.starter.StartNow(r.Context(), id); err != nil {
			s.log.Error("start now failed", "enrollment_id", id, "err", err)
			httpError(w, http.StatusInternalServerError, "could not start the install")
			return
		}
		s.log.Info("user started the update from the agent", "enrollment_id", id)
	}
	w.WriteHeader(http.StatusNoContent)
}
