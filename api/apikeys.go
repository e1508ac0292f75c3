package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/url"
	"time"

	"github.com/gorilla/mux"

	"github.com/sundial-mdm/sundial/storage"
)

// KeyStore manages API keys.
type KeyStore interface {
	PutAPIKey(ctx context.Context, k storage.APIKey) error
	APIKeys(ctx context.Context) ([]storage.APIKey, error)
	RevokeAPIKey(ctx context.Context, id string, now time.Time) error
}

// WithAPIKeys enables API key management (create, list, revoke).
func (s *Server) WithAPIKeys(ks KeyStore, now func() time.Time) *Server {
	s.keys, s.now = ks, now
	return s
}

// NewAPIKey is a created key: the secret is shown once and never stored.
type NewAPIKey struct {
	storage.APIKey
	Secret string `json:"secret"`
}

func (s *Server) registerKeys(v1 *mux.Router) {
	if s.keys == nil {
		return
	}
	v1.Handle("/apikeys", s.handle(s.listKeys)).Methods(http.MethodGet)
	v1.Handle("/apikeys", s.handle(s.createKey)).Methods(http.MethodPost)
	v1.Handle("/apikeys/{id}", s.handle(s.revokeKey)).Methods(http.MethodDelete)
}

func (s *Server) listKeys(r *http.Request) (any, int, error) {
	keys, err := s.keys.APIKeys(r.Context())
	if err != nil {
		return nil, 0, err
	}
	if keys == nil {
		keys = []storage.APIKey{}
	}
	return map[string]any{"api_keys": keys}, http.StatusOK, nil
}

func (s *Server) createKey(r *http.Request) (any, int, error) {
	var req struct {
		Name string `json:"name"`
		Role string `json:"role"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return nil, 0, err
	}
	if req.Name == "" || len(req.Name) > 100 {
		return nil, 0, &Error{Code: CodeInvalid, Message: "name: 1 to 100 characters"}
	}
	if req.Role == "" {
		req.Role = RoleAdmin
	}
	if !ValidRole(req.Role) {
		return nil, 0, &Error{Code: CodeInvalid, Message: "role: read or admin"}
	}
	b := make([]byte, 32)
	id := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return nil, 0, err
	}
	if _, err := rand.Read(id); err != nil {
		return nil, 0, err
	}
	secret := "sdl_" + hex.EncodeToString(b)
	k := storage.APIKey{ID: hex.EncodeToString(id), Name: req.Name, Role: req.Role, Hash: HashKey(secret), CreatedAt: s.now()}
	if err := s.keys.PutAPIKey(r.Context(), k); err != nil {
		return nil, 0, err
	}
	s.log.Info("api key created", "key_id", k.ID, "name", k.Name, "role", k.Role, "actor", actor(r))
	s.audit(r, "apikey.create", k.ID, nil, map[string]string{"id": k.ID, "name": k.Name})
	return NewAPIKey{APIKey: k, Secret: secret}, http.StatusCreated, nil
}

func (s *Server) revokeKey(r *http.Request) (any, int, error) {
	id := mux.Vars(r)["id"]
	// Refuse to revoke the last admin key: nobody could then manage the
	// server through the API (only through the data directory).
	keys, err := s.keys.APIKeys(r.Context())
	if err != nil {
		return nil, 0, err
	}
	admins, target := 0, false
	for _, k := range keys {
		if k.RevokedAt.IsZero() && EffectiveRole(k.Role) == RoleAdmin {
			admins++
			target = target || k.ID == id
		}
	}
	if target && admins == 1 {
		return nil, 0, &Error{Code: CodeConflict, Message: "this is the last admin API key; create another admin key before revoking it"}
	}
	if own, _ := r.Context().Value(keyIDKey).(string); own == id && r.URL.Query().Get("force") != "true" {
		return nil, 0, &Error{Code: CodeConflict, Message: "api key " + id + " is the key this request is authenticated with: revoking it locks this client out (repeat with force=true to revoke it anyway)"}
	}
	if err := s.keys.RevokeAPIKey(r.Context(), id, s.now()); err != nil {
		return nil, 0, err
	}
	s.log.Info("api key revoked", "key_id", id, "actor", actor(r))
	s.audit(r, "apikey.revoke", id, map[string]string{"id": id}, nil)
	return map[string]string{"revoked": id}, http.StatusOK, nil
}

// CreateAPIKey creates an admin key; the secret is in the answer only.
func (c *Client) CreateAPIKey(ctx context.Context, name string) (*NewAPIKey, error) {
	return c.CreateAPIKeyWithRole(ctx, name, RoleAdmin)
}

// CreateAPIKeyWithRole creates a key with a role (RoleRead or RoleAdmin).
func (c *Client) CreateAPIKeyWithRole(ctx context.Context, name, role string) (*NewAPIKey, error) {
	var out NewAPIKey
	return &out, c.doJSON(ctx, http.MethodPost, "/api/v1/apikeys", map[string]string{"name": name, "role": role}, &out)
}

// APIKeys lists keys (never their secrets).
func (c *Client) APIKeys(ctx context.Context) ([]storage.APIKey, error) {
	var out struct {
		APIKeys []storage.APIKey `json:"api_keys"`
	}
	return out.APIKeys, c.doJSON(ctx, http.MethodGet, "/api/v1/apikeys", nil, &out)
}

// RevokeAPIKey revokes a key by ID.
func (c *Client) RevokeAPIKey(ctx context.Context, id string) error {
	return c.doJSON(ctx, http.MethodDelete, "/api/v1/apikeys/"+url.PathEscape(id), nil, nil)
}

// RevokeOwnAPIKey revokes a key by ID even when it is the key c uses.
func (c *Client) RevokeOwnAPIKey(ctx context.Context, id string) error {
	return c.doJSON(ctx, http.MethodDelete, "/api/v1/apikeys/"+url.PathEscape(id)+"?force=true", nil, nil)
}
