package enrollment

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sundial-mdm/sundial/certs"
)

// boundPrefix starts every challenge bound to a UDID: "udid:<UDID>:<random>".
// The UDID is readable in the challenge, but only challenges Sundial minted
// are in the store (by hash), so a device cannot rewrite it.
const boundPrefix = "udid:"

// BoundChallenges mints one-time SCEP challenges bound to one device (for
// Automated Device Enrollment): the identity issued against such a challenge
// is valid only for that UDID. They live in the same [ChallengeStore] as
// other one-time challenges.
type BoundChallenges struct {
	store ChallengeStore
	ttl   time.Duration
}

// NewBoundChallenges returns bound challenges kept in store, valid for ttl
// (DefaultChallengeTTL when ttl <= 0). It panics if store is nil.
func NewBoundChallenges(store ChallengeStore, ttl time.Duration) *BoundChallenges {
	if store == nil {
		panic("enrollment: NewBoundChallenges with nil store")
	}
	if ttl <= 0 {
		ttl = DefaultChallengeTTL
	}
	return &BoundChallenges{store: store, ttl: ttl}
}

// IssueBoundChallenge mints and records a challenge for udid.
func (b *BoundChallenges) IssueBoundChallenge(ctx context.Context, udid string, now time.Time) (string, error) {
	if !certs.ValidUDID(udid) {
		return "", errors.New("issue bound challenge: invalid udid")
	}
	var r [24]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", fmt.Errorf("mint challenge: %w", err)
	}
	challenge := boundPrefix + udid + ":" + base64.RawURLEncoding.EncodeToString(r[:])
	if err := b.store.PutChallenge(ctx, ChallengeKey(challenge), now.Add(b.ttl)); err != nil {
		return "", fmt.Errorf("store challenge: %w", err)
	}
	return challenge, nil
}

// VerifyBoundChallenge consumes challenge and returns the UDID it is bound
// to; ok is false for a challenge that is not bound, unknown, used or
// expired.
func (b *BoundChallenges) VerifyBoundChallenge(ctx context.Context, challenge string, now time.Time) (udid string, ok bool, err error) {
	udid, isBound := boundUDID(challenge)
	if !isBound || len(challenge) > maxChallenge {
		return "", false, nil
	}
	ok, err = b.store.TakeChallenge(ctx, ChallengeKey(challenge), now)
	if err != nil {
		return "", false, fmt.Errorf("take challenge: %w", err)
	}
	if !ok {
		return "", false, nil
	}
	return udid, true, nil
}

// boundUDID returns the UDID named by a bound challenge.
func boundUDID(challenge string) (string, bool) {
	rest, ok := strings.CutPrefix(challenge, boundPrefix)
	if !ok {
		return "", false
	}
	udid, _, ok := strings.Cut(rest, ":")
	if !ok || !certs.ValidUDID(udid) {
		return "", false
	}
	return udid, true
}

// BoundChallengeVerifier consumes challenges bound to a UDID.
type BoundChallengeVerifier interface {
	VerifyBoundChallenge(ctx context.Context, challenge string, now time.Time) (udid string, ok bool, err error)
}

// BoundIdentityIssuer issues an identity valid only for udid.
type BoundIdentityIssuer interface {
	IssueCheckedBoundIdentity(csr *certs.CheckedCSR, udid string, now time.Time) (*x509.Certificate, error)
}

// WithBoundChallenges makes the SCEP handler accept challenges bound to a
// UDID (they start with "udid:"): they are checked by v instead of the
// handler's usual verifier, and the identity comes from issuer, bound to
// that UDID.
func WithBoundChallenges(v BoundChallengeVerifier, issuer BoundIdentityIssuer) SCEPOption {
	return func(h *SCEPHandler) {
		if v != nil && issuer != nil {
			h.bound, h.boundIssuer = v, issuer
		}
	}
}

// verifyAndIssue checks the challenge of a request and issues its identity:
// through the bound verifier for a bound challenge (when configured), else
// through the handler's verifier. ok is false for a refused challenge.
func (h *SCEPHandler) verifyAndIssue(ctx context.Context, challenge string, csr *certs.CheckedCSR, now time.Time) (cert *x509.Certificate, ok bool, err error) {
	if _, isBound := boundUDID(challenge); isBound && h.bound != nil {
		udid, ok, err := h.bound.VerifyBoundChallenge(ctx, challenge, now)
		if err != nil || !ok {
			return nil, false, err
		}
		cert, err := h.boundIssuer.IssueCheckedBoundIdentity(csr, udid, now)
		return cert, err == nil, err
	}
	ok, err = h.challenges.VerifyChallenge(ctx, challenge, now)
	if err != nil || !ok {
		return nil, false, err
	}
	cert, err = h.issuer.IssueCheckedIdentity(csr, now)
	return cert, err == nil, err
}
