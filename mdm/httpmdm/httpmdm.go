// Package httpmdm serves the device-facing MDM endpoints: check-in
// (CheckInURL) and command (ServerURL). It caps bodies, authenticates the
// device certificate (Mdm-Signature, TLS client certificate or a header from
// a TLS-terminating proxy), decodes the plist and calls the service.
//
// Status codes: 200 (empty body when nothing is queued), 400 malformed body,
// 401 missing, untrusted or unbound identity, 404 unknown declarative
// endpoint, 405 wrong method, 410 declined (user channel), 413 body over the
// cap (or its Content-Length), 415 binary plist, 500 internal errors, 503
// with Retry-After when too many body bytes are in flight.
package httpmdm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/sundial-mdm/sundial/certs"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/service"
)

// Service is what the handlers call.
type Service interface {
	Checkin(ctx context.Context, who service.Identity, msg *mdm.CheckinMessage) ([]byte, error)
	CommandReport(ctx context.Context, who service.Identity, r *mdm.Report, raw []byte) (*mdm.Command, error)
}

// IdentityVerifier checks that a device certificate chains to Sundial's CA.
type IdentityVerifier interface {
	VerifySigner(s *certs.Signer, now time.Time) error
}

// Clock tells the time.
type Clock interface{ Now() time.Time }

// Handler serves the check-in and command endpoints.
type Handler struct {
	svc        Service
	verifier   IdentityVerifier
	clock      Clock
	log        *slog.Logger
	certHeader string
	inflight   inflight
}

// Option configures a Handler.
type Option func(*Handler)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(h *Handler) { h.log = l } }

// WithCertHeader takes the client certificate from this request header, set
// by a TLS-terminating proxy (RFC 9440 or URL-escaped PEM), when a request has
// no Mdm-Signature. Only enable it behind a proxy that strips the header from
// client requests.
func WithCertHeader(name string) Option { return func(h *Handler) { h.certHeader = name } }

// New returns the device handler.
func New(svc Service, verifier IdentityVerifier, clk Clock, opts ...Option) *Handler {
	if svc == nil || verifier == nil || clk == nil {
		panic("httpmdm.New: nil dependency")
	}
	h := &Handler{svc: svc, verifier: verifier, clock: clk, log: slog.New(slog.DiscardHandler)}
	h.inflight.max = DefaultInflightBytes
	for _, o := range opts {
		o(h)
	}
	return h
}

const checkinContentType = "application/x-apple-aspen-mdm-checkin"

// Checkin serves CheckInURL.
func (h *Handler) Checkin() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, true) })
}

// Connect serves ServerURL. Check-in messages sent to it (a profile without
// CheckInURL) are recognised by their content type.
func (h *Handler) Connect() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.serve(w, r, strings.HasPrefix(r.Header.Get("Content-Type"), checkinContentType))
	})
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, checkin bool) {
	if r.Method != http.MethodPut && r.Method != http.MethodPost {
		w.Header().Set("Allow", "PUT")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	// Bound the bodies held before anyone is authenticated (inflight.go).
	booked, ok := h.inflight.reserve(r)
	if !ok {
		h.log.Warn("device request refused: too many request bytes in flight", "remote", r.RemoteAddr)
		overBudget(w)
		return
	}
	defer h.inflight.release(booked)
	body, err := readBody(w, r, booked)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.fail(w, r, http.StatusRequestEntityTooLarge, "body over the size limit", err)
			return
		}
		h.fail(w, r, http.StatusBadRequest, "could not read body", err)
		return
	}
	who, signer, err := h.identify(r, body)
	if err != nil {
		h.fail(w, r, http.StatusUnauthorized, "device identity refused", err)
		return
	}
	ctx := r.Context()
	if checkin {
		msg, err := mdm.DecodeCheckin(body)
		if err != nil {
			h.failDecode(w, r, err)
			return
		}
		if msg.MessageType == mdm.Authenticate {
			// The binding records when the certificate expires.
			notAfter, err := signer.NotAfter()
			if err != nil {
				h.fail(w, r, http.StatusUnauthorized, "device identity refused", err)
				return
			}
			who.NotAfter = notAfter
		}
		resp, err := h.svc.Checkin(ctx, who, msg)
		if err != nil {
			h.failService(w, r, err)
			return
		}
		if resp != nil {
			if msg.MessageType == mdm.DeclarativeManagement {
				w.Header().Set("Content-Type", "application/json")
			} else {
				w.Header().Set("Content-Type", "application/xml")
			}
			w.Write(resp)
		}
		return
	}
	rep, err := mdm.DecodeReport(body)
	if err != nil {
		h.failDecode(w, r, err)
		return
	}
	cmd, err := h.svc.CommandReport(ctx, who, rep, body)
	if err != nil {
		h.failService(w, r, err)
		return
	}
	if cmd == nil {
		w.WriteHeader(http.StatusOK) // nothing queued: 200 with an empty body, never 204
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	w.Write(cmd.Raw)
}

// identify finds the request's device certificate and checks it chains to
// Sundial's CA.
func (h *Handler) identify(r *http.Request, body []byte) (service.Identity, *certs.Signer, error) {
	var signer *certs.Signer
	switch {
	case r.Header.Get("Mdm-Signature") != "":
		s, err := certs.VerifyMdmSignatureSigner(r.Header.Get("Mdm-Signature"), body)
		if err != nil {
			return service.Identity{}, nil, err
		}
		signer = s
	case r.TLS != nil && len(r.TLS.PeerCertificates) > 0:
		signer = certs.SignerOf(r.TLS.PeerCertificates[0])
	case h.certHeader != "" && r.Header.Get(h.certHeader) != "":
		cert, err := certs.CertFromHeader(r.Header.Get(h.certHeader))
		if err != nil {
			return service.Identity{}, nil, err
		}
		signer = certs.SignerOf(cert)
	default:
		return service.Identity{}, nil, errors.New("no Mdm-Signature and no client certificate")
	}
	if err := h.verifier.VerifySigner(signer, h.clock.Now()); err != nil {
		return service.Identity{}, nil, err
	}
	// An identity issued for Automated Device Enrollment names the one
	// UDID it may enroll (certs.IssueBoundIdentity).
	bound, err := signer.BoundUDID()
	if err != nil {
		return service.Identity{}, nil, err
	}
	return service.Identity{CertHash: signer.Hash(), BoundUDID: bound}, signer, nil
}

func (h *Handler) failDecode(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, mdm.ErrBinaryPlist) {
		h.fail(w, r, http.StatusUnsupportedMediaType, "binary property lists are not accepted", err)
		return
	}
	h.fail(w, r, http.StatusBadRequest, "malformed request body", err)
}

func (h *Handler) failService(w http.ResponseWriter, r *http.Request, err error) {
	var pe *mdm.ParseError
	switch {
	case errors.As(err, &pe):
		h.failDecode(w, r, err)
	case errors.Is(err, service.ErrUnauthorized):
		h.fail(w, r, http.StatusUnauthorized, "device identity refused", err)
	case errors.Is(err, service.ErrGone):
		h.fail(w, r, http.StatusGone, "declined", err)
	case errors.Is(err, service.ErrNotFound):
		h.fail(w, r, http.StatusNotFound, "not found", err)
	case errors.Is(err, mdm.ErrNoIdentity):
		h.fail(w, r, http.StatusBadRequest, "malformed request body", err)
	default:
		h.fail(w, r, http.StatusInternalServerError, "internal error", err)
	}
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, msg string, err error) {
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	h.log.Log(r.Context(), level, "device request failed", "status", status, "path", r.URL.Path,
		"remote", r.RemoteAddr, "err", fmt.Sprint(err))
	http.Error(w, msg, status)
}
