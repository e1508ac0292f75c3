package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sundial-mdm/sundial/storage"
)

// Role is what a signed-in admin may do.
type Role string

// Roles: read sees everything and changes nothing; admin may also change.
const (
	RoleRead  Role = "read"
	RoleAdmin Role = "admin"
)

// Principal is who signed in with an API key.
type Principal struct {
	// Name is the key's name, written to the audit log as the actor.
	Name string
	Role Role
	// KeyHash identifies the key, so that a session ends when its key is
	// revoked.
	KeyHash string
}

// ErrBadKey is returned for an unknown or revoked API key.
var ErrBadKey = errors.New("invalid or revoked API key")

// Authenticator checks an API key: sign-in, and every request of a session
// (a revoked key ends its sessions at once).
type Authenticator interface {
	// ByHash returns who holds the key with this hash (hex sha256), or
	// ErrBadKey.
	ByHash(ctx context.Context, hash string) (Principal, error)
}

// KeyLookup finds API keys by hash (storage.APIKeyStore has it).
type KeyLookup interface {
	APIKeyByHash(ctx context.Context, hash string) (*storage.APIKey, error)
}

// KeyAuth authenticates against the API key store, with the role of each key
// given by roleOf (the key store has no roles of its own yet).
type KeyAuth struct {
	Keys   KeyLookup
	RoleOf func(*storage.APIKey) Role
}

// ByHash implements Authenticator.
func (a KeyAuth) ByHash(ctx context.Context, hash string) (Principal, error) {
	k, err := a.Keys.APIKeyByHash(ctx, hash)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && !k.RevokedAt.IsZero()) {
		return Principal{}, ErrBadKey
	}
	if err != nil {
		return Principal{}, fmt.Errorf("look up api key: %w", err)
	}
	name := k.Name
	if name == "" {
		name = "api key " + k.ID
	}
	role := RoleRead
	if a.RoleOf != nil {
		role = a.RoleOf(k)
	}
	return Principal{Name: name, Role: role, KeyHash: hash}, nil
}

// HashKey is how the key store keys API keys: hex(sha256(key)), as
// api.HashKey.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// session is one signed-in browser.
type session struct {
	principal Principal
	csrf      string
	// zone is the admin's time zone for showing times.
	zone    *time.Location
	expires time.Time
}

// sessions keeps sessions in memory, keyed by the sha256 of the cookie
// value (a leaked memory dump does not hand out live cookies). A restart
// signs everybody out, which is acceptable for an admin console.
type sessions struct {
	mu  sync.Mutex
	m   map[string]*session
	ttl time.Duration
	max int
}

func newSessions(ttl time.Duration, max int) *sessions {
	return &sessions{m: map[string]*session{}, ttl: ttl, max: max}
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func tokenKey(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return string(sum[:])
}

// create starts a session and returns its cookie value. At the cap, expired
// sessions are dropped first, then the one closest to expiry.
func (s *sessions) create(p Principal, zone *time.Location, now time.Time) (string, *session) {
	tok := randomToken()
	ss := &session{principal: p, csrf: randomToken(), zone: zone, expires: now.Add(s.ttl)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= s.max {
		var oldest string
		for k, v := range s.m {
			if !now.Before(v.expires) {
				delete(s.m, k)
			} else if oldest == "" || v.expires.Before(s.m[oldest].expires) {
				oldest = k
			}
		}
		if len(s.m) >= s.max {
			delete(s.m, oldest)
		}
	}
	s.m[tokenKey(tok)] = ss
	return tok, ss
}

// get returns the live session of a cookie value, or nil.
func (s *sessions) get(tok string, now time.Time) *session {
	if tok == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.m[tokenKey(tok)]
	if ss == nil {
		return nil
	}
	if !now.Before(ss.expires) {
		delete(s.m, tokenKey(tok))
		return nil
	}
	return ss
}

func (s *sessions) remove(tok string) {
	s.mu.Lock()
	delete(s.m, tokenKey(tok))
	s.mu.Unlock()
}

// validCSRF compares a form's token with the session's in constant time.
func (ss *session) validCSRF(tok string) bool {
	return tok != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(ss.csrf)) == 1
}
