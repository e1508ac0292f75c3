package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Enforcement paths a Plan can name.
const (
	// PathLegacy is the MDM-command path: Start Now is reported to the
	// server, which sends ScheduleOSUpdate InstallASAP.
	PathLegacy = "legacy"
	// PathDeclarative is the declarative-management path: the OS enforces
	// its own deadline and Start Now opens Software Update.
	PathDeclarative = "declarative"
)

// MaxPlanSize is the largest plan document ParsePlan accepts.
const MaxPlanSize = 64 << 10

// Plan is what the server tells the agent about its Mac. It is the payload
// of the agent API; the JSON names are the wire names.
type Plan struct {
	// TargetVersion is the macOS version the Mac must run, e.g. "15.4".
	TargetVersion string `json:"target_version"`
	// TargetBuild is the build of TargetVersion, e.g. "24E248"; optional.
	TargetBuild string `json:"target_build,omitempty"`
	// Deadline is the device's personal deadline D, an absolute instant.
	Deadline time.Time `json:"deadline"`
	// Phase is the server's phase for the device (pending, notify,
	// countdown, enforce, compliant). It is informational: the agent
	// derives what to show from Deadline and its own clock, so it keeps
	// working while the server is unreachable.
	Phase string `json:"phase,omitempty"`
	// DetailsURL is an http(s) page about the update; optional.
	DetailsURL string `json:"details_url,omitempty"`
	// Path is the enforcement path, PathLegacy or PathDeclarative.
	Path string `json:"path,omitempty"`
	// Compliant is true when the Mac already runs TargetVersion or later.
	Compliant bool `json:"compliant"`
	// Managed is false when the device's group does not manage updates.
	Managed bool `json:"managed"`
}

// Active reports whether the plan asks the agent to show anything at all:
// the Mac is managed, not compliant, and has a target and a deadline.
func (p Plan) Active() bool {
	return p.Managed && !p.Compliant && p.TargetVersion != "" && !p.Deadline.IsZero()
}

// Key identifies the target and deadline the user's choices belong to. When
// it changes the machine re-plans and earlier snoozes are forgotten.
func (p Plan) Key() string {
	if !p.Active() {
		return ""
	}
	return p.TargetVersion + "|" + p.TargetBuild + "|" + p.Deadline.UTC().Format(time.RFC3339Nano)
}

// Declarative reports whether Start Now opens Software Update locally
// instead of asking the server for an install.
func (p Plan) Declarative() bool { return p.Path == PathDeclarative }

// Validate checks a plan received from the server. An invalid plan must be
// ignored: the agent keeps the last valid one.
func (p Plan) Validate() error {
	switch p.Path {
	case "", PathLegacy, PathDeclarative:
	default:
		return fmt.Errorf("unknown enforcement path %q", p.Path)
	}
	if p.DetailsURL != "" {
		if err := checkWebURL(p.DetailsURL); err != nil {
			return fmt.Errorf("details url: %w", err)
		}
	}
	if len(p.TargetVersion) > 64 || len(p.TargetBuild) > 64 {
		return errors.New("target version or build too long")
	}
	if strings.ContainsFunc(p.TargetVersion+p.TargetBuild, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return errors.New("target version or build contains control characters")
	}
	if !p.Managed || p.Compliant {
		return nil
	}
	if p.TargetVersion == "" {
		return errors.New("managed non-compliant plan without target version")
	}
	if p.Deadline.IsZero() {
		return errors.New("managed non-compliant plan without deadline")
	}
	return nil
}

// ParsePlan decodes and validates a JSON plan document from the server.
func ParsePlan(data []byte) (Plan, error) {
	if len(data) > MaxPlanSize {
		return Plan{}, fmt.Errorf("parse plan: document of %d bytes exceeds %d", len(data), MaxPlanSize)
	}
	var p Plan
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&p); err != nil {
		return Plan{}, fmt.Errorf("parse plan: %w", err)
	}
	if dec.More() {
		return Plan{}, errors.New("parse plan: trailing data after document")
	}
	if err := p.Validate(); err != nil {
		return Plan{}, fmt.Errorf("parse plan: %w", err)
	}
	return p, nil
}

func checkWebURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return fmt.Errorf("scheme %q is not http or https", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("missing host")
	}
	return nil
}
