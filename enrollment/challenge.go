package enrollment

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
)

// DefaultChallengeTTL is how long a one-time SCEP challenge stays valid.
const DefaultChallengeTTL = time.Hour

// ChallengeIssuer hands out the SCEP challenge for one profile download.
type ChallengeIssuer interface {
	IssueChallenge(ctx context.Context, now time.Time) (string, error)
}

// ChallengeVerifier decides whether the challenge password of a SCEP request
// is acceptable. A one-time challenge is consumed by a successful check.
type ChallengeVerifier interface {
	VerifyChallenge(ctx context.Context, challenge string, now time.Time) (bool, error)
}

// ChallengeStore keeps one-time challenges, keyed by [ChallengeKey]. The
// lead's storage implements it; [MemoryChallengeStore] is an in-memory one.
type ChallengeStore interface {
	// PutChallenge records key as valid until expires.
	PutChallenge(ctx context.Context, key string, expires time.Time) error
	// TakeChallenge removes key and reports whether it existed and had not
	// expired at now. Two concurrent calls for one key must not both win.
	TakeChallenge(ctx context.Context, key string, now time.Time) (bool, error)
}

// ChallengeKey returns the storage key of a challenge: its SHA-256 in hex, so
// storage never holds the challenge itself.
func ChallengeKey(challenge string) string {
	sum := sha256.Sum256([]byte(challenge))
	return hex.EncodeToString(sum[:])
}

// SharedChallenge is one challenge for every device, set in configuration.
type SharedChallenge struct {
	challenge string
	digest    [sha256.Size]byte
}

var (
	_ ChallengeIssuer   = (*SharedChallenge)(nil)
	_ ChallengeVerifier = (*SharedChallenge)(nil)
)

// NewSharedChallenge returns a SharedChallenge for challenge, which must be
// non-empty.
func NewSharedChallenge(challenge string) (*SharedChallenge, error) {
	if err := validateRequestInputs(TopicPrefix+"x", challenge, false); err != nil {
		return nil, fmt.Errorf("shared challenge: %w", err)
	}
	return &SharedChallenge{challenge: challenge, digest: sha256.Sum256([]byte(challenge))}, nil
}

// IssueChallenge returns the shared challenge.
func (s *SharedChallenge) IssueChallenge(context.Context, time.Time) (string, error) {
	return s.challenge, nil
}

// VerifyChallenge compares challenge with the shared one in constant time.
func (s *SharedChallenge) VerifyChallenge(_ context.Context, challenge string, _ time.Time) (bool, error) {
	got := sha256.Sum256([]byte(challenge))
	return subtle.ConstantTimeCompare(got[:], s.digest[:]) == 1, nil
}

// OneTimeChallenges mints a fresh random challenge per profile download and
// accepts each one once, before it expires.
type OneTimeChallenges struct {
	store ChallengeStore
	ttl   time.Duration
}

var (
	_ ChallengeIssuer   = (*OneTimeChallenges)(nil)
	_ ChallengeVerifier = (*OneTimeChallenges)(nil)
)

// NewOneTimeChallenges returns one-time challenges kept in store, valid for
// ttl (DefaultChallengeTTL when ttl <= 0). It panics if store is nil.
func NewOneTimeChallenges(store ChallengeStore, ttl time.Duration) *OneTimeChallenges {
	if store == nil {
		panic("enrollment: NewOneTimeChallenges with nil store")
	}
	if ttl <= 0 {
		ttl = DefaultChallengeTTL
	}
	return &OneTimeChallenges{store: store, ttl: ttl}
}

// IssueChallenge mints and records a new challenge valid until now + ttl.
func (o *OneTimeChallenges) IssueChallenge(ctx context.Context, now time.Time) (string, error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("mint challenge: %w", err)
	}
	challenge := base64.RawURLEncoding.EncodeToString(b[:])
	if err := o.store.PutChallenge(ctx, ChallengeKey(challenge), now.Add(o.ttl)); err != nil {
		return "", fmt.Errorf("store challenge: %w", err)
	}
	return challenge, nil
}

// VerifyChallenge consumes challenge: it is accepted once, and only before it expires.
func (o *OneTimeChallenges) VerifyChallenge(ctx context.Context, challenge string, now time.Time) (bool, error) {
	if challenge == "" || len(challenge) > maxChallenge {
		return false, nil
	}
	ok, err := o.store.TakeChallenge(ctx, ChallengeKey(challenge), now)
	if err != nil {
		return false, fmt.Errorf("take challenge: %w", err)
	}
	return ok, nil
}

// MemoryChallengeStore is a [ChallengeStore] in memory, for tests, the
// simulator and single-process setups that accept losing challenges on restart.
type MemoryChallengeStore struct {
	mu      sync.Mutex
	expires map[string]time.Time
}

var _ ChallengeStore = (*MemoryChallengeStore)(nil)

// NewMemoryChallengeStore returns an empty MemoryChallengeStore.
func NewMemoryChallengeStore() *MemoryChallengeStore {
	return &MemoryChallengeStore{expires: make(map[string]time.Time)}
}

// PutChallenge records key until expires. Expired keys are dropped on the way.
func (m *MemoryChallengeStore) PutChallenge(_ context.Context, key string, expires time.Time) error {
	if key == "" {
		return errors.New("empty challenge key")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// The expiry of the new key is "now + ttl", so anything that expired
	// long before it is garbage. Sweep lazily to bound memory.
	if len(m.expires) >= 1024 {
		for k, exp := range m.expires {
			if exp.Before(expires.Add(-24 * time.Hour)) {
				delete(m.expires, k)
			}
		}
	}
	m.expires[key] = expires
	return nil
}

// TakeChallenge removes key and reports whether it was valid at now.
func (m *MemoryChallengeStore) TakeChallenge(_ context.Context, key string, now time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.expires) >= 1024 {
		for k, exp := range m.expires {
			if !now.Before(exp) {
				delete(m.expires, k)
			}
		}
	}
	exp, ok := m.expires[key]
	if !ok {
		return false, nil
	}
	delete(m.expires, key)
	return now.Before(exp), nil
}

// Len returns the number of challenges held, expired or not.
func (m *MemoryChallengeStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.expires)
}
