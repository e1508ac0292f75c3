package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/sundial-mdm/sundial/certs"
	"github.com/sundial-mdm/sundial/mdm/push"
)

// PushCertInfo describes the MDM push certificate (never the key).
type PushCertInfo struct {
	Configured    bool      `json:"configured"`
	Active        bool      `json:"active"`
	Topic         string    `json:"topic,omitempty"`
	NotAfter      time.Time `json:"not_after,omitzero"`
	ExpiresInDays int       `json:"expires_in_days,omitempty"`
	Problem       string    `json:"problem,omitempty"`
}

// PushCertRequest sets the push certificate: PEM certificate and key, or a
// base64 PKCS#12 file with its password.
type PushCertRequest struct {
	CertPEM  string `json:"cert_pem,omitempty"`
	KeyPEM   string `json:"key_pem,omitempty"`
	PKCS12   string `json:"pkcs12,omitempty"`
	Password string `json:"password,omitempty"`
}

// PushCerts manages the push certificate.
type PushCerts interface {
	Set(pc *certs.PushCert, keep bool) error
	Info() PushCertInfo
}

// Pusher pushes devices now.
type Pusher interface {
	Push(ctx context.Context, ids ...string) ([]push.Result, error)
}

// PushResult is one device's push outcome.
type PushResult struct {
	EnrollmentID string `json:"enrollment_id"`
	Outcome      string `json:"outcome"`
	Status       int    `json:"status,omitempty"`
	Reason       string `json:"reason,omitempty"`
}

// WithPush enables the push endpoints.
func (s *Server) WithPush(pc PushCerts, p Pusher) *Server {
	s.pushCerts, s.pusher = pc, p
	return s
}

func (s *Server) registerPush(v1 *mux.Router) {
	if s.pushCerts == nil {
		return
	}
	v1.Handle("/pushcert", s.handle(s.getPushCert)).Methods(http.MethodGet)
	v1.Handle("/pushcert", s.handle(s.setPushCert)).Methods(http.MethodPut)
	v1.Handle("/devices/{id}/push", s.handle(s.pushDevice)).Methods(http.MethodPost)
}

func (s *Server) getPushCert(r *http.Request) (any, int, error) {
	return s.pushCerts.Info(), http.StatusOK, nil
}

func (s *Server) setPushCert(r *http.Request) (any, int, error) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxAdminBody))
	if err != nil {
		return nil, 0, &Error{Code: CodeInvalid, Message: "read body: " + err.Error()}
	}
	var req PushCertRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, 0, &Error{Code: CodeInvalid, Message: "body must be JSON with cert_pem and key_pem, or pkcs12 and password"}
	}
	var pc *certs.PushCert
	switch {
	case req.PKCS12 != "":
		der, derr := base64.StdEncoding.DecodeString(req.PKCS12)
		if derr != nil {
			return nil, 0, &Error{Code: CodeInvalid, Message: "pkcs12 must be base64"}
		}
		pc, err = certs.LoadPushCertPKCS12(der, req.Password)
	case req.CertPEM != "" && req.KeyPEM != "":
		pc, err = certs.LoadPushCertPEM([]byte(req.CertPEM), []byte(req.KeyPEM))
	default:
		return nil, 0, &Error{Code: CodeInvalid, Message: "give cert_pem and key_pem, or pkcs12 and password"}
	}
	if err != nil {
		return nil, 0, &Error{Code: CodeInvalid, Message: err.Error()}
	}
	before := s.pushCerts.Info()
	if err := s.pushCerts.Set(pc, true); err != nil {
		return nil, 0, &Error{Code: CodeInvalid, Message: err.Error()}
	}
	s.log.Info("push certificate replaced through the API", "topic", pc.Topic)
	after := s.pushCerts.Info()
	s.audit(r, "pushcert.set", pc.Topic, before, after)
	return after, http.StatusOK, nil
}

func (s *Server) pushDevice(r *http.Request) (any, int, error) {
	id := mux.Vars(r)["id"]
	if _, err := s.store.Device(r.Context(), id); err != nil {
		return nil, 0, err
	}
	res, err := s.pusher.Push(r.Context(), id)
	if err != nil {
		return nil, 0, err
	}
	out := []PushResult{}
	for _, x := range res {
		out = append(out, PushResult{EnrollmentID: x.EnrollmentID, Outcome: string(x.Outcome), Status: x.Status, Reason: x.Reason})
	}
	if len(out) == 0 {
		return nil, 0, &Error{Code: CodeConflict, Message: "device has no valid push token (not enrolled, checked out, or APNs reported the token invalid)"}
	}
	return map[string]any{"results": out}, http.StatusOK, nil
}
