package enrollment

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Clock tells the time. Production code passes a wall clock, tests a fixed one.
type Clock interface {
	Now() time.Time
}

// ProfileSigner signs an enrollment profile: CMS SignedData with the profile
// attached.
type ProfileSigner interface {
	SignProfile(profile []byte) ([]byte, error)
}

// TopicSource returns the current APNs push topic. It fails while no push
// certificate is loaded.
type TopicSource interface {
	PushTopic(ctx context.Context) (string, error)
}

// TopicFunc adapts a function to [TopicSource].
type TopicFunc func(ctx context.Context) (string, error)

// PushTopic calls f.
func (f TopicFunc) PushTopic(ctx context.Context) (string, error) { return f(ctx) }

// StaticTopic is a [TopicSource] that never changes.
type StaticTopic string

// PushTopic returns t.
func (t StaticTopic) PushTopic(context.Context) (string, error) { return string(t), nil }

// ProfileContentType is the media type of a (signed) configuration profile.
const ProfileContentType = "application/x-apple-aspen-config"

// ProfileFilename is the name browsers save the profile under.
const ProfileFilename = "sundial-enroll.mobileconfig"

// ProfileHandler serves the signed enrollment profile on GET [PathEnroll].
//
// With a shared challenge the signed bytes are cached and rebuilt only when
// the push topic changes. With one-time challenges every download gets its own
// challenge, so every download is built and signed anew.
type ProfileHandler struct {
	base       ProfileConfig
	topics     TopicSource
	challenges ChallengeIssuer
	signer     ProfileSigner
	clock      Clock
	logger     *slog.Logger
	secret     *[sha256.Size]byte // nil: no enrollment secret

	mu    sync.Mutex
	cache cachedProfile
	bound *boundTemplate // SignedProfileWithChallenge
}

type cachedProfile struct {
	topic, challenge string
	signed           []byte
}

// ProfileOption configures a [ProfileHandler].
type ProfileOption func(*ProfileHandler)

// WithEnrollmentSecret requires secret to download the profile, given as the
// "secret" query parameter or as the password of HTTP basic auth (any user
// name). An empty secret disables the check.
func WithEnrollmentSecret(secret string) ProfileOption {
	return func(h *ProfileHandler) {
		if secret == "" {
			h.secret = nil
			return
		}
		sum := sha256.Sum256([]byte(secret))
		h.secret = &sum
	}
}

// WithProfileLogger sets the logger. The default discards.
func WithProfileLogger(logger *slog.Logger) ProfileOption {
	return func(h *ProfileHandler) {
		if logger != nil {
			h.logger = logger
		}
	}
}

// NewProfileHandler returns a handler serving the profile described by base.
// base.Topic and base.Challenge are ignored: the topic comes from topics and
// the challenge from challenges on every request. The other fields of base
// are validated here. topics, challenges, signer and clock are required.
func NewProfileHandler(base ProfileConfig, topics TopicSource, challenges ChallengeIssuer, signer ProfileSigner, clock Clock, opts ...ProfileOption) (*ProfileHandler, error) {
	if topics == nil || challenges == nil || signer == nil || clock == nil {
		return nil, errors.New("new profile handler: nil topic source, challenge issuer, signer or clock")
	}
	base = base.withDefaults()
	base.Topic, base.Challenge = "", ""
	if err := base.validateServer(); err != nil {
		return nil, fmt.Errorf("new profile handler: %w", err)
	}
	h := &ProfileHandler{
		base:       base,
		topics:     topics,
		challenges: challenges,
		signer:     signer,
		clock:      clock,
		logger:     slog.New(slog.DiscardHandler),
	}
	for _, opt := range opts {
		opt(h)
	}
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *ProfileHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !h.authorized(r) {
		h.logger.LogAttrs(r.Context(), slog.LevelWarn, "enrollment profile refused",
			slog.String("reason", "bad or missing enrollment secret"),
			slog.String("remote_addr", r.RemoteAddr))
		w.Header().Set("WWW-Authenticate", `Basic realm="Sundial enrollment", charset="UTF-8"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	h.setHeaders(w)
	if r.Method == http.MethodHead {
		// No body: do not mint a one-time challenge nor sign for a HEAD.
		w.WriteHeader(http.StatusOK)
		return
	}
	signed, err := h.SignedProfile(r.Context())
	if err != nil {
		status := http.StatusInternalServerError
		msg := "internal error"
		if errors.Is(err, errNoTopic) {
			status, msg = http.StatusServiceUnavailable, "push certificate not configured"
		}
		h.logger.LogAttrs(r.Context(), slog.LevelError, "enrollment profile failed", slog.Any("err", err))
		w.Header().Del("Content-Disposition")
		http.Error(w, msg, status)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(signed)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(signed)
	h.logger.LogAttrs(r.Context(), slog.LevelDebug, "enrollment profile served",
		slog.Int("bytes", len(signed)), slog.String("remote_addr", r.RemoteAddr))
}

func (h *ProfileHandler) setHeaders(w http.ResponseWriter) {
	hd := w.Header()
	hd.Set("Content-Type", ProfileContentType)
	hd.Set("Content-Disposition", `attachment; filename="`+ProfileFilename+`"`)
	// The profile carries a SCEP challenge: keep it out of shared caches.
	hd.Set("Cache-Control", "no-store")
}

// authorized reports whether r carries the enrollment secret, if one is set.
func (h *ProfileHandler) authorized(r *http.Request) bool {
	if h.secret == nil {
		return true
	}
	// Compare digests so that neither content nor length leaks through timing.
	match := func(s string) bool {
		sum := sha256.Sum256([]byte(s))
		return subtle.ConstantTimeCompare(sum[:], h.secret[:]) == 1
	}
	if q := r.URL.Query().Get("secret"); q != "" && match(q) {
		return true
	}
	if _, pass, ok := r.BasicAuth(); ok && match(pass) {
		return true
	}
	return false
}

var errNoTopic = errors.New("push topic unavailable")

// SignedProfile returns the signed profile for the current topic and a
// challenge, from cache when both are unchanged. The HTTP handler uses it; an
// admin command can too, to write the profile to a file. With one-time
// challenges every call mints a challenge.
func (h *ProfileHandler) SignedProfile(ctx context.Context) ([]byte, error) {
	topic, err := h.topics.PushTopic(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNoTopic, err)
	}
	challenge, err := h.challenges.IssueChallenge(ctx, h.clock.Now())
	if err != nil {
		return nil, fmt.Errorf("issue challenge: %w", err)
	}
	h.mu.Lock()
	c := h.cache
	h.mu.Unlock()
	if c.signed != nil && c.topic == topic && c.challenge == challenge {
		return c.signed, nil
	}

	cfg := h.base
	cfg.Topic, cfg.Challenge = topic, challenge
	profile, err := BuildProfile(cfg)
	if err != nil {
		return nil, err
	}
	signed, err := h.signer.SignProfile(profile)
	if err != nil {
		return nil, fmt.Errorf("sign profile: %w", err)
	}
	if len(signed) == 0 {
		return nil, errors.New("sign profile: signer returned nothing")
	}
	h.mu.Lock()
	h.cache = cachedProfile{topic: topic, challenge: challenge, signed: signed}
	h.mu.Unlock()
	if c.topic != "" && c.topic != topic {
		h.logger.LogAttrs(ctx, slog.LevelInfo, "enrollment profile rebuilt for new push topic")
	}
	return signed, nil
}
