package ddm

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sync"
	"time"
)

// Identifiers of Sundial's declarations. They are stable, so a changed
// declaration replaces the old one on the device.
const (
	IDStatusSubscriptions = "sundial.status-subscriptions"
	IDStatusActivation    = "sundial.activation.status"
	IDEnforcement         = "sundial.softwareupdate.enforcement"
	IDEnforcementActivate = "sundial.activation.softwareupdate"
)

// Countdown is the time between a device's personal deadline D and the
// TargetLocalDateTime Sundial writes: the OS counts down to D + Countdown
// while the agent shows its own 30-minute countdown.
const Countdown = 30 * time.Minute

// LocalDateTimeLayout is the layout of TargetLocalDateTime: RFC 3339 without
// a zone offset, read by the device in its own time zone.
const LocalDateTimeLayout = "2006-01-02T15:04:05"

// Enforcement is what the scheduler asks of one device: install
// TargetOSVersion by its personal deadline.
type Enforcement struct {
	// TargetOSVersion is "x.y" (the latest x.y.z) or "x.y.z".
	TargetOSVersion string
	// TargetBuildVersion is set only when a specific build is required
	// (e.g. during seeding); otherwise leave it empty.
	TargetBuildVersion string
	// Deadline is the personal deadline D, an absolute instant.
	Deadline time.Time
	// Location is the device's time zone, used to write TargetLocalDateTime
	// as the device's wall-clock time. Pass the zone the agent reports when
	// it is known, otherwise the policy's zone (see DeviceZone); the device
	// then installs at D + 30 min of that zone's wall clock in its own zone.
	Location *time.Location
	// DetailsURL is the organisation's page shown with the update (optional,
	// https).
	DetailsURL string
}

// DeviceZone picks the zone for TargetLocalDateTime: the zone the agent
// reported (an IANA name) when it loads, else the policy's zone.
func DeviceZone(agentReported string, policy *time.Location) *time.Location {
	if agentReported != "" {
		if loc, err := time.LoadLocation(agentReported); err == nil {
			return loc
		}
	}
	return policy
}

// EnforcementPayload is the Payload of the enforcement.specific declaration.
type EnforcementPayload struct {
	TargetOSVersion     string `json:"TargetOSVersion"`
	TargetBuildVersion  string `json:"TargetBuildVersion,omitempty"`
	TargetLocalDateTime string `json:"TargetLocalDateTime"`
	DetailsURL          string `json:"DetailsURL,omitempty"`
}

var (
	osVersionRE = regexp.MustCompile(`^[0-9]{1,3}\.[0-9]{1,3}(\.[0-9]{1,3})?$`)
	buildRE     = regexp.MustCompile(`^[0-9]{2}[A-Z][0-9]{1,5}[a-z]?$`)
)

// TargetLocalDateTime returns D + Countdown written as wall-clock time in loc.
func TargetLocalDateTime(deadline time.Time, loc *time.Location) string {
	return deadline.Add(Countdown).In(loc).Format(LocalDateTimeLayout)
}

// Payload checks e and returns the declaration payload.
func (e Enforcement) Payload() (EnforcementPayload, error) {
	switch {
	case !osVersionRE.MatchString(e.TargetOSVersion):
		return EnforcementPayload{}, fmt.Errorf("target OS version %q is not x.y or x.y.z", truncate(e.TargetOSVersion))
	case e.TargetBuildVersion != "" && !buildRE.MatchString(e.TargetBuildVersion):
		return EnforcementPayload{}, fmt.Errorf("target build %q is not a macOS build such as 24E248", truncate(e.TargetBuildVersion))
	case e.Deadline.IsZero():
		return EnforcementPayload{}, errors.New("enforcement without a deadline")
	case e.Location == nil:
		return EnforcementPayload{}, errors.New("enforcement without a time zone")
	}
	if e.DetailsURL != "" {
		u, err := url.Parse(e.DetailsURL)
		if err != nil || u.Scheme != "https" || u.Host == "" || len(e.DetailsURL) > 2048 {
			return EnforcementPayload{}, fmt.Errorf("details URL %q is not an https URL", truncate(e.DetailsURL))
		}
	}
	return EnforcementPayload{
		TargetOSVersion:     e.TargetOSVersion,
		TargetBuildVersion:  e.TargetBuildVersion,
		TargetLocalDateTime: TargetLocalDateTime(e.Deadline, e.Location),
		DetailsURL:          e.DetailsURL,
	}, nil
}

// Set is a device's complete declaration set, sorted by kind and identifier.
type Set struct {
	Token        string // the DeclarationsToken
	Declarations []Declaration
}

// NewDeclaration builds a declaration whose ServerToken is a hash of its type,
// identifier and payload: it changes exactly when the content does.
func NewDeclaration(declType, identifier string, payload any) (Declaration, error) {
	p, err := json.Marshal(payload)
	if err != nil {
		return Declaration{}, fmt.Errorf("encode %s payload: %w", declType, err)
	}
	h := sha256.New()
	for _, part := range [][]byte{[]byte(declType), []byte(identifier), p} {
		fmt.Fprintf(h, "%d:", len(part))
		h.Write(part)
	}
	d := Declaration{Type: declType, Identifier: identifier, ServerToken: hex.EncodeToString(h.Sum(nil)[:16]), Payload: p}
	return d, d.Validate()
}

type activationPayload struct {
	StandardConfigurations []string `json:"StandardConfigurations"`
}

type subscriptionsPayload struct {
	StatusItems []statusItemName `json:"StatusItems"`
}

type statusItemName struct {
	Name string `json:"Name"`
}

// baseSet is the part of every device channel's set: the status subscription
// and its activation.
var baseSet = sync.OnceValue(func() []Declaration {
	items := make([]statusItemName, len(SubscribedItems))
	for i, n := range SubscribedItems {
		items[i] = statusItemName{n}
	}
	sub, err := NewDeclaration(TypeStatusSubscriptions, IDStatusSubscriptions, subscriptionsPayload{items})
	if err != nil {
		panic(err)
	}
	act, err := NewDeclaration(TypeActivationSimple, IDStatusActivation, activationPayload{[]string{IDStatusSubscriptions}})
	if err != nil {
		panic(err)
	}
	return []Declaration{sub, act}
})

// BuildSet returns the declaration set of a device channel: the status
// subscription, and the enforcement with its activation when enf is not nil.
func BuildSet(enf *EnforcementPayload) (Set, error) {
	decls := slices.Clone(baseSet())
	if enf != nil {
		e, err := NewDeclaration(TypeEnforcementSpecific, IDEnforcement, enf)
		if err != nil {
			return Set{}, err
		}
		a, err := NewDeclaration(TypeActivationSimple, IDEnforcementActivate, activationPayload{[]string{IDEnforcement}})
		if err != nil {
			return Set{}, err
		}
		decls = append(decls, e, a)
	}
	return newSet(decls), nil
}

// EmptySet is the set of an enrollment Sundial declares nothing for (a user
// channel).
func EmptySet() Set { return newSet(nil) }

func newSet(decls []Declaration) Set {
	slices.SortFunc(decls, func(a, b Declaration) int {
		return cmp.Or(cmp.Compare(a.Kind(), b.Kind()), cmp.Compare(a.Identifier, b.Identifier))
	})
	h := sha256.New()
	h.Write([]byte("sundial-declarations-v1\n"))
	for _, d := range decls {
		fmt.Fprintf(h, "%s/%s:%s\n", d.Kind(), d.Identifier, d.ServerToken)
	}
	return Set{Token: hex.EncodeToString(h.Sum(nil)[:20]), Declarations: decls}
}

// Items returns the declaration-items answer.
func (s Set) Items() DeclarationItemsResponse {
	var m ManifestDeclarations
	for _, d := range s.Declarations {
		it := ManifestItem{Identifier: d.Identifier, ServerToken: d.ServerToken}
		switch d.Kind() {
		case KindActivation:
			m.Activations = append(m.Activations, it)
		case KindConfiguration:
			m.Configurations = append(m.Configurations, it)
		case KindAsset:
			m.Assets = append(m.Assets, it)
		case KindManagement:
			m.Management = append(m.Management, it)
		}
	}
	return DeclarationItemsResponse{Declarations: m, DeclarationsToken: s.Token}
}

// Lookup finds a declaration by manifest kind and identifier.
func (s Set) Lookup(kind, identifier string) (Declaration, bool) {
	for _, d := range s.Declarations {
		if d.Identifier == identifier && d.Kind() == kind {
			return d, true
		}
	}
	return Declaration{}, false
}

// SyncTokens returns the tokens answer for a set last changed at `changed`
// (the zero time is written as the Unix epoch).
func (s Set) SyncTokens(changed time.Time) SyncTokens {
	if changed.IsZero() {
		changed = time.Unix(0, 0)
	}
	return SyncTokens{DeclarationsToken: s.Token, Timestamp: changed.UTC().Format(time.RFC3339)}
}
