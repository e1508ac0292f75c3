package ade

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/storage"
)

// Clock tells the time.
type Clock interface{ Now() time.Time }

// DeviceLookup finds the ABM record of a serial (storage.ErrNotFound when
// ABM did not assign it to this server).
type DeviceLookup interface {
	ADEDevice(ctx context.Context, serial string) (*storage.ADEDevice, error)
}

// Requirement is the macOS a Mac must run before it may enroll. The zero
// value requires nothing.
type Requirement struct {
	OSVersion    string // e.g. "15.4"
	BuildVersion string // optional, e.g. "24E248"
}

// SetupMinimum tells the minimum macOS of the Mac's group at Setup
// Assistant: the zero Requirement when its policy has none or sets
// setup-minimum off.
type SetupMinimum interface {
	SetupMinimum(ctx context.Context, dev *storage.ADEDevice, mi *MachineInfo) (Requirement, error)
}

// ChallengeIssuer mints a SCEP challenge bound to one UDID.
type ChallengeIssuer interface {
	IssueBoundChallenge(ctx context.Context, udid string, now time.Time) (string, error)
}

// ProfileSource builds and signs the enrollment profile with a given SCEP
// challenge (enrollment.ProfileHandler).
type ProfileSource interface {
	SignedProfileWithChallenge(ctx context.Context, challenge string) ([]byte, error)
}

// ProfileContentType is the media type of the answer.
const ProfileContentType = "application/x-apple-aspen-config"

// ErrorCodeSoftwareUpdateRequired is Apple's code for "update first"
// (mdm/errors/softwareupdate.required.yaml; iOS 17, macOS 14).
const ErrorCodeSoftwareUpdateRequired = "com.apple.softwareupdate.required"

// UpdateRequired is the JSON body of the 403 that holds a Mac at Setup
// Assistant until it runs Details.OSVersion.
type UpdateRequired struct {
	Code    string                `json:"code"`
	Details UpdateRequiredDetails `json:"details"`
}

// UpdateRequiredDetails names the version to install.
type UpdateRequiredDetails struct {
	OSVersion    string `json:"OSVersion"`
	BuildVersion string `json:"BuildVersion,omitempty"`
}

// Handler answers the ADE enrollment request, POST /mdm/enroll.
type Handler struct {
	verifier   *Verifier
	devices    DeviceLookup
	minimum    SetupMinimum
	challenges ChallengeIssuer
	profiles   ProfileSource
	clock      Clock
	log        *slog.Logger
	outcomes   *prometheus.CounterVec
	held       HeldRecorder
}

// HeldRecorder records that a Mac was held at Setup Assistant (the audit
// log): serial, the version it runs and the version it must install.
type HeldRecorder interface {
	RecordHeld(ctx context.Context, serial, udid, have, want string)
}

// WithHeldRecorder records every Mac held at Setup Assistant.
func WithHeldRecorder(r HeldRecorder) Option { return func(h *Handler) { h.held = r } }

// Option configures a Handler.
type Option func(*Handler)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(h *Handler) {
		if l != nil {
			h.log = l
		}
	}
}

// WithRegisterer registers the outcome counter
// sundial_ade_enroll_requests_total{outcome}.
func WithRegisterer(r prometheus.Registerer) Option {
	return func(h *Handler) {
		if r != nil {
			r.MustRegister(h.outcomes)
		}
	}
}

// NewHandler returns the ADE enrollment handler. Every argument is required.
func NewHandler(v *Verifier, devices DeviceLookup, minimum SetupMinimum, challenges ChallengeIssuer, profiles ProfileSource, clk Clock, opts ...Option) *Handler {
	if v == nil || devices == nil || minimum == nil || challenges == nil || profiles == nil || clk == nil {
		panic("ade.NewHandler: nil argument")
	}
	h := &Handler{
		verifier: v, devices: devices, minimum: minimum, challenges: challenges, profiles: profiles, clock: clk,
		log: slog.New(slog.DiscardHandler),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sundial_ade_enroll_requests_total",
			Help: "ADE enrollment requests by outcome (enrolled, update_required, not_assigned, malformed, untrusted, error).",
		}, []string{"outcome"}),
	}
	for _, o := range opts {
		o(h)
	}
	return h
}

// ServeHTTP verifies the request, refuses it (nothing stored) or holds the
// Mac for an update, or answers with the signed profile.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	ctx := r.Context()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxMachineInfoSize))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			h.refuse(ctx, w, r, http.StatusRequestEntityTooLarge, "malformed", "request body too large", err)
			return
		}
		h.refuse(ctx, w, r, http.StatusBadRequest, "malformed", "cannot read request body", err)
		return
	}
	now := h.clock.Now()
	mi, err := h.verifier.Verify(body, now)
	switch {
	case errors.Is(err, ErrUntrusted):
		h.refuse(ctx, w, r, http.StatusForbidden, "untrusted", "request is not signed by a trusted Apple device", err)
		return
	case err != nil:
		h.refuse(ctx, w, r, http.StatusBadRequest, "malformed", "request is not a signed MachineInfo", err)
		return
	}
	log := h.log.With(slog.String("serial", mi.Serial), slog.String("udid", mi.UDID))
	dev, err := h.devices.ADEDevice(ctx, mi.Serial)
	if errors.Is(err, storage.ErrNotFound) {
		h.outcomes.WithLabelValues("not_assigned").Inc()
		log.Warn("ade enrollment refused: serial not assigned to this server in Apple Business Manager")
		http.Error(w, "this Mac is not assigned to this MDM server in Apple Business Manager", http.StatusForbidden)
		return
	}
	if err != nil {
		h.internal(ctx, w, log, "look up abm device", err)
		return
	}
	if req, held, err := h.holdForUpdate(ctx, dev, mi); err != nil {
		h.internal(ctx, w, log, "setup minimum", err)
		return
	} else if held {
		h.outcomes.WithLabelValues("update_required").Inc()
		if h.held != nil {
			h.held.RecordHeld(ctx, mi.Serial, mi.UDID, mi.OSVersion, req.OSVersion)
		}
		log.Info("ade enrollment held at setup assistant until the mac updates",
			slog.String("os_version", mi.OSVersion), slog.String("required", req.OSVersion))
		b, _ := json.Marshal(UpdateRequired{Code: ErrorCodeSoftwareUpdateRequired,
			Details: UpdateRequiredDetails{OSVersion: req.OSVersion, BuildVersion: req.BuildVersion}})
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write(b)
		return
	}
	challenge, err := h.challenges.IssueBoundChallenge(ctx, mi.UDID, now)
	if err != nil {
		h.internal(ctx, w, log, "issue bound challenge", err)
		return
	}
	signed, err := h.profiles.SignedProfileWithChallenge(ctx, challenge)
	if err != nil {
		h.internal(ctx, w, log, "build profile", err)
		return
	}
	h.outcomes.WithLabelValues("enrolled").Inc()
	log.Info("ade enrollment profile served", slog.String("os_version", mi.OSVersion), slog.String("build", mi.Version))
	w.Header().Set("Content-Type", ProfileContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(signed)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(signed)
}

// holdForUpdate reports whether the Mac must update first: its group
// requires a newer macOS than it runs, and it says it can update on
// request (macOS 14+). A Mac without OS_VERSION (macOS 13 and older)
// enrolls and is enforced afterwards.
func (h *Handler) holdForUpdate(ctx context.Context, dev *storage.ADEDevice, mi *MachineInfo) (Requirement, bool, error) {
	if !mi.MDMCanRequestSoftwareUpdate || mi.OSVersion == "" {
		return Requirement{}, false, nil
	}
	req, err := h.minimum.SetupMinimum(ctx, dev, mi)
	if err != nil || req.OSVersion == "" {
		return Requirement{}, false, err
	}
	want, err := catalog.ParseVersion(req.OSVersion)
	if err != nil {
		return Requirement{}, false, fmt.Errorf("required version %q: %w", req.OSVersion, err)
	}
	have, err := catalog.ParseVersion(mi.OSVersion)
	if err != nil {
		// A version we cannot read is not held: it enrolls and is
		// reported, as a check-in without OSVersion is.
		return Requirement{}, false, nil
	}
	return req, have.Less(want), nil
}

func (h *Handler) refuse(ctx context.Context, w http.ResponseWriter, r *http.Request, status int, outcome, msg string, err error) {
	h.outcomes.WithLabelValues(outcome).Inc()
	h.log.LogAttrs(ctx, slog.LevelWarn, "ade enrollment refused", slog.String("reason", msg),
		slog.String("remote_addr", r.RemoteAddr), slog.Any("err", err))
	http.Error(w, msg, status)
}

func (h *Handler) internal(ctx context.Context, w http.ResponseWriter, log *slog.Logger, what string, err error) {
	h.outcomes.WithLabelValues("error").Inc()
	log.LogAttrs(ctx, slog.LevelError, "ade enrollment failed", slog.String("step", what), slog.Any("err", err))
	http.Error(w, "internal error", http.StatusInternalServerError)
}

// SetupMinimumFunc adapts a function to [SetupMinimum].
type SetupMinimumFunc func(ctx context.Context, dev *storage.ADEDevice, mi *MachineInfo) (Requirement, error)

// SetupMinimum calls f.
func (f SetupMinimumFunc) SetupMinimum(ctx context.Context, dev *storage.ADEDevice, mi *MachineInfo) (Requirement, error) {
	return f(ctx, dev, mi)
}
