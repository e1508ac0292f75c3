package enrollment

import (
	"context"
	"errors"
	"fmt"
)

// SignedProfileWithChallenge builds and signs the profile for the current
// push topic with the given SCEP challenge (a challenge bound to one device,
// for Automated Device Enrollment). It is never cached: each challenge is
// used once.
func (h *ProfileHandler) SignedProfileWithChallenge(ctx context.Context, challenge string) ([]byte, error) {
	if challenge == "" {
		return nil, errors.New("signed profile: empty challenge")
	}
	topic, err := h.topics.PushTopic(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNoTopic, err)
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
	return signed, nil
}
