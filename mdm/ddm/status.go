package ddm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Limits on status reports from devices. A real full macOS report is a few
// kilobytes.
const (
	MaxStatusReportSize = 512 << 10 // bytes of JSON
	maxStatusItems      = 4096      // leaf items after flattening
	maxItemDepth        = 12        // dotted name components
	maxItemNameLen      = 256
	maxDeclStatuses     = 2048 // per kind in management.declarations
	maxReasons          = 64
	maxStatusErrors     = 1024
)

// Status item names Sundial reads.
const (
	ItemOSVersion           = "device.operating-system.version"
	ItemBuildVersion        = "device.operating-system.build-version"
	ItemSupplementalBuild   = "device.operating-system.supplemental.build-version"
	ItemSupplementalExtra   = "device.operating-system.supplemental.extra-version"
	ItemInstallState        = "softwareupdate.install-state"
	ItemPendingVersion      = "softwareupdate.pending-version"
	ItemFailureReason       = "softwareupdate.failure-reason"
	ItemInstallReason       = "softwareupdate.install-reason"
	ItemDeviceID            = "softwareupdate.device-id"
	ItemDeclarations        = "management.declarations"
	ItemClientCapabilities  = "management.client-capabilities"
	ItemBetaEnrollment      = "softwareupdate.beta-enrollment"
	ItemModelIdentifier     = "device.model.identifier"
	ItemOSFamily            = "device.operating-system.family"
	ItemOSMarketingName     = "device.operating-system.marketing-name"
	ItemManagementPushToken = "management.push-token"
)

// SubscribedItems are the status items Sundial's status subscription asks for.
var SubscribedItems = []string{
	ItemInstallState, ItemPendingVersion, ItemFailureReason, ItemInstallReason, ItemDeviceID,
	ItemOSVersion, ItemBuildVersion, ItemSupplementalBuild,
}

// objectItems are status items whose value is a JSON object: flattening
// stops at them instead of descending into their keys.
var objectItems = map[string]bool{
	ItemDeclarations: true, ItemClientCapabilities: true, ItemPendingVersion: true,
	ItemFailureReason: true, ItemInstallReason: true, ItemBetaEnrollment: true,
	"device.power.battery-health": false, // a string; listed for documentation
}

// Install states of softwareupdate.install-state. Apple's enumeration omits
// waiting, but its description and the deployment guide use it.
const (
	InstallNone        = "none"
	InstallWaiting     = "waiting"
	InstallDownloading = "downloading"
	InstallPrepared    = "prepared"
	InstallInstalling  = "installing"
	InstallFailed      = "failed"
)

// KnownInstallState reports whether s is one of the install states above.
// Other strings are stored as reported (a later OS may add states).
func KnownInstallState(s string) bool {
	switch s {
	case InstallNone, InstallWaiting, InstallDownloading, InstallPrepared, InstallInstalling, InstallFailed:
		return true
	}
	return false
}

// StatusReport is a decoded status report (Apple: statusreport.yaml).
type StatusReport struct {
	// Items maps each dotted status item name to its JSON value.
	Items map[string]json.RawMessage
	// Errors lists status items the device could not report.
	Errors []StatusError
	// FullReport is true for the periodic complete report (iOS 17, macOS 14);
	// false, or absent, for an incremental one.
	FullReport bool
}

// StatusError is one entry of a report's Errors.
type StatusError struct {
	StatusItem string   `json:"StatusItem"`
	Reasons    []Reason `json:"Reasons,omitempty"`
}

// Reason explains an error or an invalid declaration. Status reports spell
// the keys in lower case inside management.declarations and capitalised in
// Errors; both decode into this.
type Reason struct {
	Code        string          `json:"code"`
	Description string          `json:"description,omitempty"`
	Details     json.RawMessage `json:"details,omitempty"`
}

// UnmarshalJSON decodes either spelling (encoding/json matches keys without
// regard to case) and checks the sizes.
func (r *Reason) UnmarshalJSON(b []byte) error {
	type plain Reason
	var v plain
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	if v.Code == "" {
		return errors.New("reason without code")
	}
	if len(v.Code) > maxItemNameLen || len(v.Description) > 4096 || len(v.Details) > 8192 {
		return errors.New("reason is too long")
	}
	*r = Reason(v)
	return nil
}

// DecodeStatusReport decodes and checks the Data of a status check-in. A
// report over MaxStatusReportSize, with a malformed structure or with a
// known item of the wrong type is refused with an *mdm.ParseError.
func DecodeStatusReport(data []byte) (*StatusReport, error) {
	if len(data) == 0 {
		return nil, parseErr("status report", errors.New("empty body"))
	}
	if len(data) > MaxStatusReportSize {
		return nil, parseErr("status report", fmt.Errorf("body of %d bytes is over the %d byte cap", len(data), MaxStatusReportSize))
	}
	var raw struct {
		StatusItems json.RawMessage `json:"StatusItems"`
		Errors      []StatusError   `json:"Errors"`
		FullReport  *bool           `json:"FullReport"`
	}
	if err := strictJSON(data, &raw); err != nil {
		return nil, parseErr("status report", err)
	}
	if len(raw.StatusItems) == 0 || raw.StatusItems[0] != '{' {
		return nil, parseErr("status report", errors.New("StatusItems must be a JSON object"))
	}
	rep := &StatusReport{Items: map[string]json.RawMessage{}, FullReport: raw.FullReport != nil && *raw.FullReport}
	if err := flatten("", raw.StatusItems, 0, rep.Items); err != nil {
		return nil, parseErr("status report", err)
	}
	if len(raw.Errors) > maxStatusErrors {
		return nil, parseErr("status report", errors.New("too many Errors"))
	}
	for _, e := range raw.Errors {
		if e.StatusItem == "" || len(e.StatusItem) > maxItemNameLen || len(e.Reasons) > maxReasons {
			return nil, parseErr("status report", errors.New("malformed Errors entry"))
		}
	}
	rep.Errors = raw.Errors
	// Check the items Sundial reads have the right shape.
	if _, err := currentFrom(rep.Items); err != nil {
		return nil, parseErr("status report", err)
	}
	if v, ok := rep.Items[ItemDeclarations]; ok {
		if _, err := decodeDeclarationStatuses(v); err != nil {
			return nil, parseErr("status report", err)
		}
	}
	return rep, nil
}

// flatten walks nested StatusItems and records each leaf under its dotted name.
func flatten(prefix string, raw json.RawMessage, depth int, out map[string]json.RawMessage) error {
	if depth > maxItemDepth {
		return errors.New("status items nested too deeply")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return fmt.Errorf("status items %q: %w", prefix, err)
	}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		if k == "" || strings.Contains(k, ".") {
			return fmt.Errorf("status item key %q is empty or contains a dot", truncate(k))
		}
		name := k
		if prefix != "" {
			name = prefix + "." + k
		}
		if len(name) > maxItemNameLen {
			return errors.New("status item name is too long")
		}
		v := bytes.TrimSpace(obj[k])
		if len(v) > 0 && v[0] == '{' && !objectItems[name] && len(v) > 2 {
			if err := flatten(name, v, depth+1, out); err != nil {
				return err
			}
			continue
		}
		if len(out) >= maxStatusItems {
			return errors.New("too many status items")
		}
		out[name] = append(json.RawMessage(nil), v...)
	}
	return nil
}

// Nest turns dotted item names back into the nested StatusItems object.
func Nest(items map[string]json.RawMessage) map[string]any {
	root := map[string]any{}
	for _, name := range slices.Sorted(maps.Keys(items)) {
		parts := strings.Split(name, ".")
		m := root
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		m[parts[len(parts)-1]] = items[name]
	}
	return root
}

// PendingVersion is softwareupdate.pending-version. The strings are empty
// when no update is pending; TargetLocalDateTime is set only while an
// update is enforced.
type PendingVersion struct {
	OSVersion           string `json:"os-version"`
	BuildVersion        string `json:"build-version"`
	TargetLocalDateTime string `json:"target-local-date-time,omitempty"`
}

// FailureReason is softwareupdate.failure-reason.
type FailureReason struct {
	Count     int    `json:"count"`
	Reason    string `json:"reason,omitempty"`
	Timestamp string `json:"timestamp,omitempty"` // RFC 3339
}

// InstallReason is softwareupdate.install-reason.
type InstallReason struct {
	Reason        []string `json:"reason"`
	DeclarationID string   `json:"declaration-id,omitempty"`
}

// Current is what Sundial knows of a device from its status channel. Empty
// fields were never reported.
type Current struct {
	OSVersion                string         `json:"os_version,omitempty"`
	BuildVersion             string         `json:"build_version,omitempty"`
	SupplementalBuildVersion string         `json:"supplemental_build_version,omitempty"`
	SupplementalExtraVersion string         `json:"supplemental_extra_version,omitempty"`
	InstallState             string         `json:"install_state,omitempty"`
	PendingVersion           PendingVersion `json:"pending_version"`
	FailureReason            FailureReason  `json:"failure_reason"`
	InstallReason            InstallReason  `json:"install_reason"`
	DeviceID                 string         `json:"device_id,omitempty"`
}

// currentFrom reads the known items; a known item of the wrong type is an error.
func currentFrom(items map[string]json.RawMessage) (Current, error) {
	var c Current
	str := func(name string, dst *string) error {
		v, ok := items[name]
		if !ok {
			return nil
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return fmt.Errorf("%s: want a string", name)
		}
		if len(*dst) > 256 {
			return fmt.Errorf("%s: too long", name)
		}
		return nil
	}
	obj := func(name string, dst any) error {
		v, ok := items[name]
		if !ok {
			return nil
		}
		if len(v) == 0 || v[0] != '{' {
			return fmt.Errorf("%s: want an object", name)
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}
	for _, f := range []error{
		str(ItemOSVersion, &c.OSVersion),
		str(ItemBuildVersion, &c.BuildVersion),
		str(ItemSupplementalBuild, &c.SupplementalBuildVersion),
		str(ItemSupplementalExtra, &c.SupplementalExtraVersion),
		str(ItemInstallState, &c.InstallState),
		str(ItemDeviceID, &c.DeviceID),
		obj(ItemPendingVersion, &c.PendingVersion),
		obj(ItemFailureReason, &c.FailureReason),
		obj(ItemInstallReason, &c.InstallReason),
	} {
		if f != nil {
			return Current{}, f
		}
	}
	if c.FailureReason.Count < 0 {
		return Current{}, errors.New("softwareupdate.failure-reason: negative count")
	}
	if len(c.InstallReason.Reason) > 32 {
		return Current{}, errors.New("softwareupdate.install-reason: too many reasons")
	}
	return c, nil
}

// DeclarationStatus is one declaration's entry in management.declarations.
type DeclarationStatus struct {
	Kind        string   `json:"kind"` // activation, configuration, asset or management
	Identifier  string   `json:"identifier"`
	Active      bool     `json:"active"`
	Valid       string   `json:"valid"` // valid, invalid or unknown
	ServerToken string   `json:"server-token"`
	Reasons     []Reason `json:"reasons,omitempty"`
}

// Applied reports whether the declaration is active and valid.
func (s DeclarationStatus) Applied() bool { return s.Active && s.Valid == "valid" }

// Failed reports whether the device refused the declaration: invalid, or
// valid but inactive.
func (s DeclarationStatus) Failed() bool {
	return s.Valid == "invalid" || (s.Valid == "valid" && !s.Active)
}

func decodeDeclarationStatuses(raw json.RawMessage) ([]DeclarationStatus, error) {
	var v map[string][]struct {
		Identifier  *string  `json:"identifier"`
		Active      *bool    `json:"active"`
		Valid       string   `json:"valid"`
		ServerToken string   `json:"server-token"`
		Reasons     []Reason `json:"reasons"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("%s: %w", ItemDeclarations, err)
	}
	kinds := map[string]string{"activations": KindActivation, "configurations": KindConfiguration, "assets": KindAsset, "management": KindManagement}
	var out []DeclarationStatus
	for _, key := range slices.Sorted(maps.Keys(v)) {
		kind, ok := kinds[key]
		if !ok {
			continue // a later OS may add kinds
		}
		list := v[key]
		if len(list) > maxDeclStatuses {
			return nil, fmt.Errorf("%s.%s: too many entries", ItemDeclarations, key)
		}
		for _, e := range list {
			if e.Identifier == nil || *e.Identifier == "" || len(*e.Identifier) > maxItemNameLen || len(e.ServerToken) > maxItemNameLen {
				return nil, fmt.Errorf("%s.%s: entry without a valid identifier", ItemDeclarations, key)
			}
			if e.Active == nil {
				return nil, fmt.Errorf("%s.%s: entry without active", ItemDeclarations, key)
			}
			if len(e.Reasons) > maxReasons || len(e.Valid) > 32 {
				return nil, fmt.Errorf("%s.%s: malformed entry", ItemDeclarations, key)
			}
			out = append(out, DeclarationStatus{Kind: kind, Identifier: *e.Identifier, Active: *e.Active,
				Valid: e.Valid, ServerToken: e.ServerToken, Reasons: e.Reasons})
		}
	}
	return out, nil
}
