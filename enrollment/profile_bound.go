package enrollment

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
)

// boundTemplate is the unsigned profile of one push topic, split where the
// SCEP challenge goes: a profile for a bound challenge is then two copies
// and a signature instead of a plist encoding (about a quarter of a
// millisecond per ADE enrollment; docs/benchmarks.md).
type boundTemplate struct {
	topic         string
	before, after []byte
}

// SignedProfileWithChallenge builds and signs the profile for the current
// push topic with the given SCEP challenge (a challenge bound to one device,
// for Automated Device Enrollment). The signed bytes are never cached: each
// challenge is used once.
func (h *ProfileHandler) SignedProfileWithChallenge(ctx context.Context, challenge string) ([]byte, error) {
	if challenge == "" {
		return nil, errors.New("signed profile: empty challenge")
	}
	topic, err := h.topics.PushTopic(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNoTopic, err)
	}
	var profile []byte
	if t, err := h.boundTemplate(topic); err == nil && xmlSafe(challenge) {
		profile = make([]byte, 0, len(t.before)+len(challenge)+len(t.after))
		profile = append(append(append(profile, t.before...), challenge...), t.after...)
	} else {
		cfg := h.base
		cfg.Topic, cfg.Challenge = topic, challenge
		if profile, err = BuildProfile(cfg); err != nil {
			return nil, err
		}
	}
	signed, err := h.signer.SignProfile(profile)
	if err != nil {
		return nil, fmt.Errorf("sign profile: %w", err)
	}
	return signed, nil
}

// boundTemplate returns the template of topic, building it on first use or
// when the topic changed.
func (h *ProfileHandler) boundTemplate(topic string) (*boundTemplate, error) {
	h.mu.Lock()
	t := h.bound
	h.mu.Unlock()
	if t != nil && t.topic == topic {
		return t, nil
	}
	var r [16]byte
	if _, err := rand.Read(r[:]); err != nil {
		return nil, err
	}
	marker := "sundial-challenge-" + hex.EncodeToString(r[:])
	cfg := h.base
	cfg.Topic, cfg.Challenge = topic, marker
	p, err := BuildProfile(cfg)
	if err != nil {
		return nil, err
	}
	i := bytes.Index(p, []byte(marker))
	if i < 0 || bytes.Count(p, []byte(marker)) != 1 {
		return nil, errors.New("profile template: challenge not found exactly once")
	}
	t = &boundTemplate{topic: topic, before: p[:i], after: p[i+len(marker):]}
	h.mu.Lock()
	h.bound = t
	h.mu.Unlock()
	return t, nil
}

// xmlSafe reports whether s can go into XML character data as it is.
func xmlSafe(s string) bool {
	for _, c := range []byte(s) {
		if c < 0x20 || c > 0x7e || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}
