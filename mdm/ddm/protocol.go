package ddm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sundial-mdm/sundial/mdm"
)

// MaxIdentifierLen is the longest Identifier or ServerToken a declaration
// may carry, in octets (Apple: declarationbase.yaml).
const MaxIdentifierLen = 64

// Manifest kinds: the four declaration arrays of declaration-items and the
// second path element of the declaration/<kind>/<identifier> endpoint.
const (
	KindActivation    = "activation"
	KindConfiguration = "configuration"
	KindAsset         = "asset"
	KindManagement    = "management"
)

// Declaration types Sundial emits.
const (
	TypeActivationSimple       = "com.apple.activation.simple"
	TypeEnforcementSpecific    = "com.apple.configuration.softwareupdate.enforcement.specific"
	TypeStatusSubscriptions    = "com.apple.configuration.management.status-subscriptions"
	TypeSoftwareUpdateSettings = "com.apple.configuration.softwareupdate.settings"
)

// KindOf returns the manifest kind of a declaration type, or "" for a type
// outside Apple's four families.
func KindOf(declType string) string {
	switch {
	case strings.HasPrefix(declType, "com.apple.activation."):
		return KindActivation
	case strings.HasPrefix(declType, "com.apple.configuration."):
		return KindConfiguration
	case strings.HasPrefix(declType, "com.apple.asset."):
		return KindAsset
	case strings.HasPrefix(declType, "com.apple.management."):
		return KindManagement
	}
	return ""
}

// SyncTokens is the body of the tokens endpoint and of the DeclarativeManagement
// command's Data.
type SyncTokens struct {
	DeclarationsToken string `json:"DeclarationsToken"`
	Timestamp         string `json:"Timestamp"` // RFC 3339, UTC
}

// TokensResponse answers the tokens endpoint (Apple: tokensresponse.yaml).
type TokensResponse struct {
	SyncTokens SyncTokens `json:"SyncTokens"`
}

// ManifestItem names one declaration in declaration-items.
type ManifestItem struct {
	Identifier  string `json:"Identifier"`
	ServerToken string `json:"ServerToken"`
}

// ManifestDeclarations are the four arrays of declaration-items; all four
// are always present, empty or not.
type ManifestDeclarations struct {
	Activations    []ManifestItem `json:"Activations"`
	Configurations []ManifestItem `json:"Configurations"`
	Assets         []ManifestItem `json:"Assets"`
	Management     []ManifestItem `json:"Management"`
}

// DeclarationItemsResponse answers the declaration-items endpoint (Apple:
// declarationitemsresponse.yaml).
type DeclarationItemsResponse struct {
	Declarations      ManifestDeclarations `json:"Declarations"`
	DeclarationsToken string               `json:"DeclarationsToken"`
}

// MarshalJSON writes all four arrays even when they are nil.
func (m ManifestDeclarations) MarshalJSON() ([]byte, error) {
	nz := func(s []ManifestItem) []ManifestItem {
		if s == nil {
			return []ManifestItem{}
		}
		return s
	}
	type plain ManifestDeclarations
	return json.Marshal(plain{nz(m.Activations), nz(m.Configurations), nz(m.Assets), nz(m.Management)})
}

// Declaration is one declaration as served at declaration/<kind>/<identifier>.
type Declaration struct {
	Type        string          `json:"Type"`
	Identifier  string          `json:"Identifier"`
	ServerToken string          `json:"ServerToken"`
	Payload     json.RawMessage `json:"Payload"`
}

// Kind is the declaration's manifest kind.
func (d Declaration) Kind() string { return KindOf(d.Type) }

// Validate checks the declaration base rules.
func (d Declaration) Validate() error {
	switch {
	case KindOf(d.Type) == "":
		return fmt.Errorf("declaration type %q is not an activation, configuration, asset or management type", truncate(d.Type))
	case d.Identifier == "" || len(d.Identifier) > MaxIdentifierLen:
		return fmt.Errorf("declaration identifier must be 1 to %d octets", MaxIdentifierLen)
	case d.ServerToken == "" || len(d.ServerToken) > MaxIdentifierLen:
		return fmt.Errorf("declaration server token must be 1 to %d octets", MaxIdentifierLen)
	case len(d.Payload) == 0 || d.Payload[0] != '{':
		return errors.New("declaration payload must be a JSON object")
	}
	return nil
}

// MaxDeclarationSize caps a declaration body accepted by DecodeDeclaration.
const MaxDeclarationSize = 64 << 10

// DecodeDeclaration decodes and checks a declaration body.
func DecodeDeclaration(data []byte) (*Declaration, error) {
	if len(data) > MaxDeclarationSize {
		return nil, parseErr("declaration", fmt.Errorf("body of %d bytes is over the %d byte cap", len(data), MaxDeclarationSize))
	}
	var d Declaration
	if err := strictJSON(data, &d); err != nil {
		return nil, parseErr("declaration", err)
	}
	if err := d.Validate(); err != nil {
		return nil, parseErr("declaration", err)
	}
	return &d, nil
}

// DecodeSyncTokens decodes the Data of a DeclarativeManagement command (or a
// tokens answer): {"SyncTokens": {"DeclarationsToken", "Timestamp"}}.
func DecodeSyncTokens(data []byte) (*SyncTokens, error) {
	if len(data) > 4096 {
		return nil, parseErr("sync tokens", errors.New("body is over the 4096 byte cap"))
	}
	var v struct {
		SyncTokens *SyncTokens `json:"SyncTokens"`
	}
	if err := strictJSON(data, &v); err != nil {
		return nil, parseErr("sync tokens", err)
	}
	if v.SyncTokens == nil || v.SyncTokens.DeclarationsToken == "" {
		return nil, parseErr("sync tokens", errors.New("missing SyncTokens.DeclarationsToken"))
	}
	if v.SyncTokens.Timestamp != "" {
		if _, err := time.Parse(time.RFC3339, v.SyncTokens.Timestamp); err != nil {
			return nil, parseErr("sync tokens", fmt.Errorf("timestamp: %w", err))
		}
	}
	return v.SyncTokens, nil
}

// ParseDeclarationPath splits the endpoint declaration/<kind>/<identifier>.
func ParseDeclarationPath(endpoint string) (kind, identifier string, err error) {
	rest, ok := strings.CutPrefix(endpoint, "declaration/")
	if !ok {
		return "", "", errors.New("not a declaration endpoint")
	}
	kind, identifier, ok = strings.Cut(rest, "/")
	if !ok {
		return "", "", errors.New("declaration endpoint without identifier")
	}
	switch kind {
	case KindActivation, KindConfiguration, KindAsset, KindManagement:
	default:
		return "", "", fmt.Errorf("unknown declaration kind %q", truncate(kind))
	}
	if identifier == "" || len(identifier) > MaxIdentifierLen || strings.Contains(identifier, "/") {
		return "", "", errors.New("malformed declaration identifier")
	}
	return kind, identifier, nil
}

// syncCommand builds the DeclarativeManagement command that tells a device
// to sync to tokens.
func syncCommand(tokens SyncTokens) (*mdm.Command, error) {
	data, err := json.Marshal(TokensResponse{SyncTokens: tokens})
	if err != nil {
		return nil, err
	}
	return mdm.NewCommand("DeclarativeManagement", map[string]any{"Data": data})
}

// strictJSON decodes one JSON value into v and refuses trailing data.
func strictJSON(data []byte, v any) error {
	if !utf8.Valid(data) {
		return errors.New("not UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("json: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

func parseErr(what string, err error) error {
	return &mdm.ParseError{What: what, Err: err}
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
