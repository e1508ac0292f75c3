package mdmtest

// Declarative device management, as a macOS 14+ Mac does it over MDM: the
// DeclarativeManagement command makes the device fetch tokens,
// declaration-items and every changed declaration, apply them, and send
// status reports for the items it is subscribed to. An enforced software
// update (softwareupdate.enforcement.specific) goes waiting → downloading →
// prepared → installing on the injected clock, installs at
// TargetLocalDateTime read in the device's time zone, and the Mac comes back
// with the new OS version.
//
// Reason codes for refused declarations and unsupported status items are
// synthetic (Apple documents the shape, not every code), except
// Error.ConfigurationCannotBeApplied, seen in a real report.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Declaration types the simulator understands.
const (
	declActivationSimple    = "com.apple.activation.simple"
	declEnforcementSpecific = "com.apple.configuration.softwareupdate.enforcement.specific"
	declStatusSubscriptions = "com.apple.configuration.management.status-subscriptions"
	declSoftwareUpdateSet   = "com.apple.configuration.softwareupdate.settings"
)

// ddmWait is how long an enforced update reports "waiting" before it downloads.
const ddmWait = time.Minute

// ddmState is a simulated Mac's declarative management state; d.mu guards it.
type ddmState struct {
	zone       *time.Location
	enrollment *Enrollment // the enrollment the declarations came from
	enabled    bool        // a sync has happened
	token      string      // DeclarationsToken of the applied set
	decls      map[string]*simDeclaration
	subscribed map[string]bool
	lastSent   map[string]string // status item -> JSON last reported
	update     *ddmUpdate
	reason     map[string]any // softwareupdate.install-reason
	failures   int
	failReason string
	failAt     time.Time
	reject     map[string]string // declaration type -> reason code
	failNext   string            // the next enforced install fails with this reason
	syncErr    error
	reports    int
}

// simDeclaration is a declaration the Mac holds, with its status.
type simDeclaration struct {
	Kind, Type, Identifier, ServerToken string
	Payload                             json.RawMessage
	active                              bool
	valid                               string
	reasons                             []map[string]any
}

type ddmUpdate struct {
	declID, token string
	target        Update
	tldt          string
	downloadAt    time.Time
	preparedAt    time.Time
	installAt     time.Time
	job           *updateJob // nil when the install will fail
	fail          string
}

// WithTimeZone sets the Mac's time zone, in which it reads
// TargetLocalDateTime (default UTC).
func WithTimeZone(loc *time.Location) Option {
	return func(d *Device) error {
		if loc == nil {
			return errors.New("nil time zone")
		}
		d.ddm.zone = loc
		return nil
	}
}

// SetTimeZone changes the Mac's time zone. An enforcement already applied
// keeps the instant it computed, as macOS does until the next sync.
func (d *Device) SetTimeZone(loc *time.Location) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ddm.zone = loc
}

func (d *Device) zoneLocked() *time.Location {
	if d.ddm.zone == nil {
		return time.UTC
	}
	return d.ddm.zone
}

// SetDeclarationFailure makes the Mac refuse declarations of declType
// (reported valid "invalid" with the reason code, e.g.
// "Error.ConfigurationCannotBeApplied"); an empty code accepts them again.
// It takes effect at the next sync.
func (d *Device) SetDeclarationFailure(declType, code string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ddm.reject == nil {
		d.ddm.reject = map[string]string{}
	}
	if code == "" {
		delete(d.ddm.reject, declType)
	} else {
		d.ddm.reject[declType] = code
	}
}

// SetEnforcedInstallFailure makes the next enforced update fail when it
// should install: install-state "failed" and failure-reason with reason.
// An empty reason restores normal installs.
func (d *Device) SetEnforcedInstallFailure(reason string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ddm.failNext = reason
}

// DeclarationState is a declaration the Mac holds, for tests.
type DeclarationState struct {
	Kind, Type, Identifier, ServerToken string
	Active                              bool
	Valid                               string
	Payload                             json.RawMessage
}

// Declarations lists the declarations the Mac holds, by kind and identifier.
func (d *Device) Declarations() []DeclarationState {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []DeclarationState
	for _, k := range slices.Sorted(maps.Keys(d.ddm.decls)) {
		x := d.ddm.decls[k]
		out = append(out, DeclarationState{Kind: x.Kind, Type: x.Type, Identifier: x.Identifier,
			ServerToken: x.ServerToken, Active: x.active, Valid: x.valid, Payload: x.Payload})
	}
	return out
}

// DeclarationsToken returns the token of the declaration set the Mac applied.
func (d *Device) DeclarationsToken() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ddm.token
}

// LastSyncError returns the error of the last declarative sync started by a
// DeclarativeManagement command (the command itself is always acknowledged).
func (d *Device) LastSyncError() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ddm.syncErr
}

// InstallState returns softwareupdate.install-state now.
func (d *Device) InstallState() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.installStateLocked(d.clock.Now())
}

func osMajor(v string) int {
	p, err := parseVersion(v)
	if err != nil || len(p) == 0 {
		return 0
	}
	return p[0]
}

// declarativeManagement answers the DeclarativeManagement command: it is
// acknowledged, and the Mac syncs (a failed sync is kept for LastSyncError).
func (d *Device) declarativeManagement(ctx context.Context, cmd *Command) Result {
	d.mu.Lock()
	enrolled := d.enrollment != nil
	major := osMajor(d.os.version)
	d.mu.Unlock()
	if major != 0 && major < 13 {
		return Result{Status: StatusError, ErrorChain: append([]ErrorChainItem(nil), ErrUnknownCommand...)}
	}
	var sync struct {
		SyncTokens struct{ DeclarationsToken string }
	}
	if data, ok := cmd.Payload["Data"].([]byte); ok {
		_ = json.Unmarshal(data, &sync) // a Mac ignores unreadable tokens and syncs
	}
	if enrolled {
		err := d.SyncDeclarations(ctx, sync.SyncTokens.DeclarationsToken)
		d.mu.Lock()
		d.ddm.syncErr = err
		d.mu.Unlock()
	}
	return Result{Status: StatusAcknowledged}
}

// SyncDeclarations runs a declarative sync: it fetches the tokens, and if
// they differ from the applied set (or hint differs), the declaration items
// and each changed declaration, applies them and sends a status report.
func (d *Device) SyncDeclarations(ctx context.Context, hint string) error {
	d.mu.Lock()
	if d.ddm.enrollment != d.enrollment {
		d.resetDDMLocked()
	}
	first := !d.ddm.enabled
	applied := d.ddm.token
	d.mu.Unlock()

	var tokens struct {
		SyncTokens struct{ DeclarationsToken string }
	}
	if err := d.ddmGet(ctx, "tokens", &tokens); err != nil {
		return err
	}
	server := tokens.SyncTokens.DeclarationsToken
	if server == "" {
		return errors.New("mdmtest: tokens answer without DeclarationsToken")
	}
	if server != applied || first || (hint != "" && hint != applied) {
		if err := d.fetchDeclarations(ctx); err != nil {
			return err
		}
	}
	_, err := d.SendDeclarativeStatus(ctx, first)
	return err
}

func (d *Device) ddmGet(ctx context.Context, endpoint string, v any) error {
	body, err := d.DeclarativeManagement(ctx, endpoint, nil)
	if err != nil {
		return fmt.Errorf("mdmtest: declarative %s: %w", endpoint, err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("mdmtest: declarative %s: %w", endpoint, err)
	}
	return nil
}

func (d *Device) fetchDeclarations(ctx context.Context) error {
	type item struct{ Identifier, ServerToken string }
	var items struct {
		Declarations struct {
			Activations, Configurations, Assets, Management *[]item
		}
		DeclarationsToken string
	}
	if err := d.ddmGet(ctx, "declaration-items", &items); err != nil {
		return err
	}
	ds := items.Declarations
	if ds.Activations == nil || ds.Configurations == nil || ds.Assets == nil || ds.Management == nil {
		return errors.New("mdmtest: declaration-items without all four arrays")
	}
	d.mu.Lock()
	have := maps.Clone(d.ddm.decls)
	d.mu.Unlock()
	next := map[string]*simDeclaration{}
	for kind, list := range map[string][]item{"activation": *ds.Activations, "configuration": *ds.Configurations,
		"asset": *ds.Assets, "management": *ds.Management} {
		for _, it := range list {
			k := kind + "/" + it.Identifier
			if old, ok := have[k]; ok && old.ServerToken == it.ServerToken {
				next[k] = old
				continue
			}
			var decl simDeclaration
			if err := d.ddmGet(ctx, "declaration/"+k, &decl); err != nil {
				return err
			}
			if decl.Identifier != it.Identifier || decl.ServerToken != it.ServerToken || decl.Type == "" {
				return fmt.Errorf("mdmtest: declaration %s does not match its manifest item", k)
			}
			decl.Kind = kind
			next[k] = &decl
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ddm.decls = next
	d.ddm.token = items.DeclarationsToken
	d.ddm.enabled = true
	d.applyDeclarationsLocked(d.clock.Now())
	return nil
}

func (d *Device) resetDDMLocked() {
	d.cancelUpdateLocked()
	zone, reject, failNext := d.ddm.zone, d.ddm.reject, d.ddm.failNext
	d.ddm = ddmState{zone: zone, reject: reject, failNext: failNext, enrollment: d.enrollment}
}

func reasons(code, desc string) []map[string]any {
	return []map[string]any{{"code": code, "description": desc, "details": map[string]any{"Error": desc}}}
}

// applyDeclarationsLocked validates and activates the held declarations
// and plans the enforced update.
func (d *Device) applyDeclarationsLocked(now time.Time) {
	d.advanceLocked(now)
	macOS := osMajor(d.os.version)
	referenced := map[string]bool{}
	for _, x := range d.ddm.decls {
		x.active, x.valid, x.reasons = false, "valid", nil
		if code, ok := d.ddm.reject[x.Type]; ok {
			x.valid, x.reasons = "invalid", reasons(code, "Configuration cannot be applied")
			continue
		}
		switch x.Kind {
		case "activation":
			if x.Type != declActivationSimple {
				x.valid, x.reasons = "invalid", reasons("Error.UnknownDeclarationType", "Unknown declaration type")
				continue
			}
			var p struct{ StandardConfigurations []string }
			if err := json.Unmarshal(x.Payload, &p); err != nil || len(p.StandardConfigurations) == 0 {
				x.valid, x.reasons = "invalid", reasons("Error.InvalidPayload", "Invalid payload")
				continue
			}
			x.active = true
			for _, id := range p.StandardConfigurations {
				referenced[id] = true
			}
		case "configuration":
			switch x.Type {
			case declStatusSubscriptions, declSoftwareUpdateSet:
			case declEnforcementSpecific:
				var p struct{ TargetOSVersion, TargetLocalDateTime string }
				_ = json.Unmarshal(x.Payload, &p)
				_, verr := parseVersion(p.TargetOSVersion)
				_, terr := time.Parse("2006-01-02T15:04:05", p.TargetLocalDateTime)
				switch {
				case macOS < 14:
					x.valid, x.reasons = "invalid", reasons("Error.UnknownDeclarationType", "Unknown declaration type")
				case !d.IsSupervised:
					x.valid, x.reasons = "invalid", reasons("Error.DeclarationNotAllowed", "This declaration requires a supervised device")
				case verr != nil || terr != nil:
					x.valid, x.reasons = "invalid", reasons("Error.InvalidPayload", "Invalid payload")
				}
			default:
				x.valid, x.reasons = "invalid", reasons("Error.UnknownDeclarationType", "Unknown declaration type")
			}
		}
	}
	d.ddm.subscribed = map[string]bool{}
	var enforcement *simDeclaration
	for _, k := range slices.Sorted(maps.Keys(d.ddm.decls)) {
		x := d.ddm.decls[k]
		if x.Kind != "configuration" {
			continue
		}
		x.active = x.valid == "valid" && referenced[x.Identifier]
		if !x.active {
			continue
		}
		switch x.Type {
		case declStatusSubscriptions:
			var p struct{ StatusItems []struct{ Name string } }
			_ = json.Unmarshal(x.Payload, &p)
			for _, it := range p.StatusItems {
				d.ddm.subscribed[it.Name] = true
			}
		case declEnforcementSpecific:
			if enforcement == nil {
				enforcement = x
			}
		}
	}
	d.planUpdateLocked(now, enforcement)
}

// planUpdateLocked starts, keeps or cancels the enforced update.
func (d *Device) planUpdateLocked(now time.Time, x *simDeclaration) {
	if u := d.ddm.update; u != nil && x != nil && u.declID == x.Identifier && u.token == x.ServerToken {
		return
	}
	d.cancelUpdateLocked()
	if x == nil {
		return
	}
	var p struct{ TargetOSVersion, TargetBuildVersion, TargetLocalDateTime string }
	_ = json.Unmarshal(x.Payload, &p)
	target, ok := d.enforcedUpdateLocked(p.TargetOSVersion, p.TargetBuildVersion)
	if !ok {
		return // not available (or already installed): the configuration stays active
	}
	tldt, _ := time.ParseInLocation("2006-01-02T15:04:05", p.TargetLocalDateTime, d.zoneLocked())
	u := &ddmUpdate{declID: x.Identifier, token: x.ServerToken, target: target, tldt: p.TargetLocalDateTime,
		downloadAt: now.Add(ddmWait)}
	u.preparedAt = u.downloadAt.Add(d.timings.Download)
	u.installAt = tldt
	if u.installAt.Before(u.preparedAt) {
		u.installAt = u.preparedAt
	}
	needGB := float64(target.DownloadSize+target.InstallSize) / 1e9
	switch {
	case d.ddm.failNext != "":
		u.fail, d.ddm.failNext = d.ddm.failNext, ""
	case needGB > d.available:
		u.fail = "DownloadInsufficientSpace"
	default:
		u.job = &updateJob{update: target, action: ActionInstallForceRestart, downloadStart: u.downloadAt,
			downloadDone: u.preparedAt, install: true, installStart: u.installAt}
		d.jobs = append(d.jobs, u.job)
	}
	d.ddm.update = u
	d.ddm.reason = map[string]any{"reason": []string{"declaration"}, "declaration-id": x.Identifier}
}

// enforcedUpdateLocked finds the catalog update an enforcement targets:
// "x.y" is the latest x.y.z, "x.y.z" exactly that; a build narrows it.
func (d *Device) enforcedUpdateLocked(version, build string) (Update, bool) {
	var best Update
	found := false
	for _, u := range d.catalog {
		if u.isRSR() || !d.applicableLocked(u) {
			continue
		}
		if u.Version != version && !strings.HasPrefix(u.Version, version+".") {
			continue
		}
		if build != "" && u.Build != build {
			continue
		}
		if !found || compareVersions(u.Version, best.Version) > 0 {
			best, found = u, true
		}
	}
	return best, found
}

func (d *Device) cancelUpdateLocked() {
	u := d.ddm.update
	if u == nil {
		return
	}
	d.ddm.update = nil
	if u.job == nil || !u.job.installStart.After(d.clock.Now()) {
		return // failing, or already installing: it finishes
	}
	d.jobs = slices.DeleteFunc(d.jobs, func(j *updateJob) bool { return j == u.job })
}

// installStateLocked advances the clock-driven update and returns
// softwareupdate.install-state.
func (d *Device) installStateLocked(now time.Time) string {
	d.advanceLocked(now)
	u := d.ddm.update
	if u == nil {
		return "none"
	}
	if u.job != nil && !slices.Contains(d.jobs, u.job) {
		d.ddm.update = nil // installed: the Mac runs the new OS
		return "none"
	}
	switch {
	case now.Before(u.downloadAt):
		return "waiting"
	case now.Before(u.preparedAt):
		return "downloading"
	case now.Before(u.installAt):
		return "prepared"
	case u.fail != "":
		if !d.ddm.failAt.Equal(u.installAt) {
			d.ddm.failures++
			d.ddm.failReason, d.ddm.failAt = u.fail, u.installAt
		}
		return "failed"
	default:
		return "installing"
	}
}

// statusItemsLocked returns every status item the Mac can report, as JSON.
func (d *Device) statusItemsLocked(now time.Time) map[string]any {
	state := d.installStateLocked(now)
	pending := map[string]any{"os-version": "", "build-version": ""}
	if u := d.ddm.update; u != nil {
		pending = map[string]any{"os-version": u.target.Version, "build-version": u.target.Build, "target-local-date-time": u.tldt}
	}
	failure := map[string]any{"count": d.ddm.failures}
	if d.ddm.failures > 0 {
		failure["reason"] = d.ddm.failReason
		failure["timestamp"] = d.ddm.failAt.UTC().Format(time.RFC3339)
	}
	reason := d.ddm.reason
	if reason == nil {
		reason = map[string]any{"reason": []string{}}
	}
	items := map[string]any{
		"device.operating-system.version":                    d.os.version,
		"device.operating-system.build-version":              d.os.build,
		"device.operating-system.supplemental.build-version": d.os.suppBuild,
		"device.operating-system.family":                     "macOS",
		"device.operating-system.marketing-name":             "macOS " + d.os.version,
		"device.model.identifier":                            d.ProductName,
		"device.model.family":                                "Mac",
		"device.model.marketing-name":                        d.ModelName,
		"device.identifier.serial-number":                    d.SerialNumber,
		"device.identifier.udid":                             d.UDID,
		"softwareupdate.install-state":                       state,
		"softwareupdate.pending-version":                     pending,
		"softwareupdate.failure-reason":                      failure,
		"softwareupdate.install-reason":                      reason,
		"softwareupdate.device-id":                           d.SoftwareUpdateDeviceID,
	}
	if d.os.suppExtra != "" {
		items["device.operating-system.supplemental.extra-version"] = d.os.suppExtra
	}
	if d.noOS {
		for k := range items {
			if strings.HasPrefix(k, "device.operating-system.") {
				delete(items, k)
			}
		}
	}
	return items
}

func (d *Device) declarationsItemLocked() map[string]any {
	out := map[string]any{"activations": []any{}, "configurations": []any{}, "assets": []any{}, "management": []any{}}
	keys := map[string]string{"activation": "activations", "configuration": "configurations", "asset": "assets", "management": "management"}
	for _, k := range slices.Sorted(maps.Keys(d.ddm.decls)) {
		x := d.ddm.decls[k]
		e := map[string]any{"identifier": x.Identifier, "active": x.active, "valid": x.valid, "server-token": x.ServerToken}
		if len(x.reasons) > 0 {
			e["reasons"] = x.reasons
		}
		out[keys[x.Kind]] = append(out[keys[x.Kind]].([]any), e)
	}
	return out
}

func (d *Device) clientCapabilities() map[string]any {
	return map[string]any{
		"supported-versions": []string{"1.0.0"},
		"supported-payloads": map[string]any{
			"declarations": map[string]any{
				"activations":    []string{declActivationSimple},
				"configurations": []string{declStatusSubscriptions, declEnforcementSpecific, declSoftwareUpdateSet},
				"assets":         []string{},
				"management":     []string{},
			},
			"status-items": []string{"device.operating-system.version", "management.declarations", "softwareupdate.install-state"},
		},
		"supported-features": map[string]any{},
	}
}

// SendDeclarativeStatus sends a status report: with full, every subscribed
// item; otherwise only items that changed since the last report (nothing is
// sent when nothing changed). It reports whether a report was sent.
func (d *Device) SendDeclarativeStatus(ctx context.Context, full bool) (bool, error) {
	d.mu.Lock()
	if !d.ddm.enabled {
		d.mu.Unlock()
		return false, errors.New("mdmtest: declarative management is not enabled (no sync yet)")
	}
	now := d.clock.Now()
	all := d.statusItemsLocked(now)
	all["management.declarations"] = d.declarationsItemLocked()
	if full {
		all["management.client-capabilities"] = d.clientCapabilities()
	}
	send := map[string]any{}
	var errs []any
	next := maps.Clone(d.ddm.lastSent)
	if next == nil || full {
		next = map[string]string{}
	}
	for name, v := range all {
		always := strings.HasPrefix(name, "management.")
		if !always && !d.ddm.subscribed[name] {
			continue
		}
		b, _ := json.Marshal(v)
		if !full && d.ddm.lastSent[name] == string(b) {
			continue
		}
		send[name] = json.RawMessage(b)
		next[name] = string(b)
	}
	if full {
		for _, name := range slices.Sorted(maps.Keys(d.ddm.subscribed)) {
			if _, ok := all[name]; !ok {
				errs = append(errs, map[string]any{"StatusItem": name,
					"Reasons": []any{map[string]any{"Code": "Error.StatusItemUnsupported", "Description": "Unsupported status item"}}})
			}
		}
	}
	d.mu.Unlock()
	if len(send) == 0 && !full {
		return false, nil
	}
	if errs == nil {
		errs = []any{}
	}
	body, err := json.Marshal(map[string]any{"StatusItems": nest(send), "Errors": errs, "FullReport": full})
	if err != nil {
		return false, fmt.Errorf("mdmtest: encode status report: %w", err)
	}
	if _, err := d.DeclarativeManagement(ctx, "status", body); err != nil {
		return false, fmt.Errorf("mdmtest: declarative status: %w", err)
	}
	d.mu.Lock()
	d.ddm.lastSent = next
	d.ddm.reports++
	d.mu.Unlock()
	return true, nil
}

// nest turns dotted item names into nested objects.
func nest(items map[string]any) map[string]any {
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
