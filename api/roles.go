package api

import (
	"net/http"
	"strings"
)

// API key roles.
const (
	// RoleRead reads devices, reports, policies and the audit log.
	RoleRead = "read"
	// RoleAdmin may do everything.
	RoleAdmin = "admin"
)

// CodeForbidden: the API key's role does not allow the request (403).
const CodeForbidden = "forbidden"

// ValidRole reports whether role is one a key may be given.
func ValidRole(role string) bool { return role == RoleRead || role == RoleAdmin }

// EffectiveRole is a stored key's role: keys made before roles existed
// (empty) are admins.
func EffectiveRole(stored string) string {
	if stored == "" {
		return RoleAdmin
	}
	return stored
}

// adminOnlyReads are GET paths under /api/v1 that expose secrets or
// credentials and need the admin role even to read.
var adminOnlyReads = []string{"/api/v1/backup", "/api/v1/apikeys", "/api/v1/webhooks"}

// Allows reports whether a key of role may make a request with this method
// to this path. Admins may do everything; read keys may only read (GET and
// HEAD), and not the backup (which holds every secret) or the key list. It
// is the one place roles are decided: the admin API and the web console
// both ask it.
func Allows(role, method, path string) bool {
	switch role {
	case RoleAdmin:
		return true
	case RoleRead:
		if method != http.MethodGet && method != http.MethodHead {
			return false
		}
		for _, p := range adminOnlyReads {
			if path == p || strings.HasPrefix(path, p+"/") {
				return false
			}
		}
		return true
	}
	return false
}

// RequireKey serves h only to requests with a valid API key whose role
// allows them (e.g. /metrics and the detailed /healthz on the device
// listener).
func (s *Server) RequireKey(h http.Handler) http.Handler { return s.authenticate(h) }
