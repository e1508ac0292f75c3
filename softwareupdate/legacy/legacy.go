// Package legacy enforces macOS updates with the MDM ScheduleOSUpdate
// command family (macOS 11 to 26; deprecated in 26, removed in 27):
//
//	pending    ScheduleOSUpdateScan (Force) + AvailableOSUpdates: learn the product key
//	notify     ScheduleOSUpdate DownloadOnly (Priority High on 12.3+ minor updates),
//	           then OSUpdateStatus until downloaded
//	countdown  InstallASAP, only when the user chose Start Now
//	enforce    InstallForceRestart (InstallASAP for major upgrades), verified by a
//	           fresh DeviceInformation and re-sent, with backoff, until compliant
//
// It is a scheduler.Enforcer: the scheduler commits the step fields it sets
// together with the commands it returns, so no step is sent twice.
package legacy

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// Steps the legacy enforcer records in scheduler.State.Step.
const (
	StepScan        = "scan"         // ScheduleOSUpdateScan + AvailableOSUpdates
	StepDownload    = "download"     // ScheduleOSUpdate DownloadOnly
	StepStatus      = "status"       // OSUpdateStatus
	StepInstallASAP = "install-asap" // ScheduleOSUpdate InstallASAP
	StepForce       = "install-force"
	StepVerify      = "verify" // DeviceInformation after an install
)

// InstallActions of ScheduleOSUpdate.
const (
	ActionDownloadOnly        = "DownloadOnly"
	ActionInstallASAP         = "InstallASAP"
	ActionInstallForceRestart = "InstallForceRestart"
	ActionDefault             = "Default"
)

// Config tunes the enforcer. Zero fields take the defaults.
type Config struct {
	// PollEvery is how often OSUpdateStatus is asked while downloading (1 h).
	PollEvery time.Duration
	// VerifyAfter is how long after an install command a DeviceInformation
	// checks the new version (30 min).
	VerifyAfter time.Duration
	// RetryBase is the first backoff after a failure or an install that did
	// not take; it doubles per attempt up to RetryMax (1 h, 24 h).
	RetryBase, RetryMax time.Duration
	// MaxAttempts bounds forced installs and failed steps (5); then the
	// failure stays until an admin retries or the policy changes.
	MaxAttempts int
	// RescanEvery is how long to wait before scanning again when the device
	// does not offer the target yet (12 h).
	RescanEvery time.Duration
}

func (c *Config) defaults() {
	if c.PollEvery <= 0 {
		c.PollEvery = time.Hour
	}
	if c.VerifyAfter <= 0 {
		c.VerifyAfter = 30 * time.Minute
	}
	if c.RetryBase <= 0 {
		c.RetryBase = time.Hour
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 24 * time.Hour
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.RescanEvery <= 0 {
		c.RescanEvery = 12 * time.Hour
	}
}

// Enforcer is the legacy path's scheduler.Enforcer.
type Enforcer struct {
	cfg Config

	// Command templates, so that a pass queueing the same ScheduleOSUpdate
	// for thousands of Macs encodes its plist once.
	tplMu sync.Mutex
	tpls  map[tplKey]*mdm.CommandTemplate
}

type tplKey struct {
	requestType, action, productKey, version string
	high                                     bool
}

// maxTemplates bounds the cache; it is emptied when full (a handful of
// distinct commands is the normal case).
const maxTemplates = 256

// command returns a fresh command for k, encoding its payload at most once.
func (e *Enforcer) command(k tplKey) (*mdm.Command, error) {
	e.tplMu.Lock()
	defer e.tplMu.Unlock()
	if t := e.tpls[k]; t != nil {
		return t.New(), nil
	}
	var payload map[string]any
	switch k.requestType {
	case "ScheduleOSUpdate":
		item := map[string]any{"InstallAction": k.action}
		if k.productKey != "" {
			item["ProductKey"] = k.productKey
		} else {
			item["ProductVersion"] = k.version
		}
		if k.high {
			item["Priority"] = "High"
		}
		payload = map[string]any{"Updates": []any{item}}
	case "ScheduleOSUpdateScan":
		payload = map[string]any{"Force": true}
	case "DeviceInformation":
		payload = map[string]any{"Queries": mdm.InventoryQueries}
	}
	t, err := mdm.NewCommandTemplate(k.requestType, payload)
	if err != nil {
		return nil, err
	}
	if e.tpls == nil || len(e.tpls) >= maxTemplates {
		e.tpls = make(map[tplKey]*mdm.CommandTemplate)
	}
	e.tpls[k] = t
	return t.New(), nil
}

var (
	_ scheduler.Enforcer    = (*Enforcer)(nil)
	_ scheduler.ResultTypes = (*Enforcer)(nil)
)

// New returns a legacy enforcer.
func New(cfg Config) *Enforcer {
	cfg.defaults()
	return &Enforcer{cfg: cfg}
}

// RequestTypes implements scheduler.ResultTypes.
func (e *Enforcer) RequestTypes() []string {
	return []string{"ScheduleOSUpdateScan", "AvailableOSUpdates", "ScheduleOSUpdate", "OSUpdateStatus", "DeviceInformation"}
}

func (e *Enforcer) backoff(attempts int) time.Duration {
	d := e.cfg.RetryBase
	for i := 1; i < attempts && d < e.cfg.RetryMax; i++ {
		d *= 2
	}
	return min(d, e.cfg.RetryMax)
}

var (
	v11   = catalog.NewVersion(11, 0, 0)
	v12   = catalog.NewVersion(12, 0, 0)
	v12_3 = catalog.NewVersion(12, 3, 0)
)

// Step implements scheduler.Enforcer.
func (e *Enforcer) Step(ctx context.Context, st *scheduler.State, in scheduler.Input) (scheduler.Action, error) {
	var act scheduler.Action
	if st.Path == softwareupdate.PathDeclarative {
		return act, nil // never send legacy update commands on the declarative path
	}
	now := in.Now
	switch in.Decision.Phase {
	case softwareupdate.PhasePending, softwareupdate.PhaseNotify, softwareupdate.PhaseCountdown, softwareupdate.PhaseEnforce:
	default:
		// Compliant, exempt, unsupported, unknown, unmanaged or failed:
		// nothing to send; the scheduler retries failures at RetryAt.
		st.NextCheck = time.Time{}
		return act, nil
	}
	if st.Target == "" {
		return act, nil
	}
	if !st.Facts.Supervised {
		if st.Failure == "" {
			st.Attempts++
			st.Fail("ScheduleOSUpdate needs a supervised Mac: this Mac is not supervised", now, now.Add(e.cfg.RetryMax))
		}
		return act, nil
	}
	os, _ := catalog.ParseVersion(st.Facts.OSVersion)
	send := func(step, reason string, cmds ...*mdm.Command) {
		st.Step, st.StepAt = step, now
		last := cmds[len(cmds)-1]
		st.StepCommand, st.Awaiting = last.UUID, last.RequestType
		st.NextCheck = time.Time{}
		act.Commands = append(act.Commands, cmds...)
		act.Events = append(act.Events, scheduler.Transition{At: now, Kind: scheduler.EventStep, Step: step,
			Reason: reason, Target: st.Target, Deadline: st.Deadline, From: st.Phase})
	}
	due := func() bool { return st.NextCheck.IsZero() || !now.Before(st.NextCheck) }
	canUseVersion := os.Compare(v12) >= 0 // ProductVersion needs macOS 12
	needScan := st.ProductKey == "" && !canUseVersion

	switch in.Decision.Phase {
	case softwareupdate.PhasePending:
		if st.Step == "" && st.ProductKey == "" && due() {
			cmds, err := e.scanCommands()
			if err != nil {
				return act, err
			}
			send(StepScan, "learn the product key of "+st.Target, cmds...)
		}
		return act, nil

	case softwareupdate.PhaseNotify, softwareupdate.PhaseCountdown:
		if !st.StartNowAt.IsZero() && !isInstallStep(st.Step) {
			cmd, err := e.schedule(st, os, ActionInstallASAP, false)
			if err != nil {
				return act, err
			}
			st.InstallAction = ActionInstallASAP
			send(StepInstallASAP, "the user chose Start Now: InstallASAP", cmd)
			return act, nil
		}
		switch {
		case isInstallStep(st.Step):
			err := e.verifyStep(st, due, send)
			return act, err
		case st.Downloaded:
			st.NextCheck = time.Time{}
			return act, nil
		case st.Step == "" || (st.Step == StepScan && (st.Awaiting == "" || canUseVersion)):
			if needScan {
				if st.Step == "" && due() {
					cmds, err := e.scanCommands()
					if err != nil {
						return act, err
					}
					send(StepScan, "learn the product key of "+st.Target, cmds...)
				}
				return act, nil
			}
			cmd, err := e.schedule(st, os, ActionDownloadOnly, !st.MajorUpgrade && os.Compare(v12_3) >= 0)
			if err != nil {
				return act, err
			}
			send(StepDownload, "deadline within 5 days: download "+st.Target, cmd)
		case (st.Step == StepDownload || st.Step == StepStatus) && st.Awaiting == "" && due():
			cmd, err := e.command(tplKey{requestType: "OSUpdateStatus"})
			if err != nil {
				return act, err
			}
			send(StepStatus, "check the download of "+st.Target, cmd)
		}
		return act, nil

	case softwareupdate.PhaseEnforce:
		action := ActionInstallForceRestart
		why := "deadline passed: force the install and restart"
		switch {
		case st.MajorUpgrade:
			action, why = ActionInstallASAP, "deadline passed: major upgrade with InstallASAP"
		case os.Compare(v11) < 0:
			action, why = ActionInstallASAP, "deadline passed: InstallASAP (InstallForceRestart needs macOS 11)"
		case st.InstallAction != "" && st.InstallAction != ActionInstallForceRestart && st.Step == StepVerify:
			action, why = st.InstallAction, "deadline passed: "+st.InstallAction+" (the Mac substituted another action)"
		}
		if isInstallStep(st.Step) || st.Step == StepVerify {
			if st.Step == StepVerify && st.Awaiting == "" && due() {
				// The install did not take: re-send, bounded.
				if st.Attempts >= e.cfg.MaxAttempts {
					st.Fail(fmt.Sprintf("still on %s after %d install attempts", st.Facts.OSVersion, st.Attempts), now, time.Time{})
					return act, nil
				}
				st.Attempts++
				cmd, err := e.schedule(st, os, action, false)
				if err != nil {
					return act, err
				}
				st.InstallAction = action
				send(StepForce, fmt.Sprintf("%s (attempt %d of %d)", why, st.Attempts, e.cfg.MaxAttempts), cmd)
				return act, nil
			}
			err := e.verifyStep(st, due, send)
			return act, err
		}
		if needScan && st.Step == "" && due() {
			cmds, err := e.scanCommands()
			if err != nil {
				return act, err
			}
			send(StepScan, "learn the product key of "+st.Target+" before forcing the install", cmds...)
			return act, nil
		}
		if needScan {
			return act, nil // scanning, or waiting to scan again
		}
		st.Attempts++
		cmd, err := e.schedule(st, os, action, false)
		if err != nil {
			return act, err
		}
		st.InstallAction = action
		send(StepForce, fmt.Sprintf("%s (attempt %d of %d)", why, st.Attempts, e.cfg.MaxAttempts), cmd)
	}
	return act, nil
}

// verifyStep queues a DeviceInformation once an install command was
// answered and VerifyAfter has passed.
func (e *Enforcer) verifyStep(st *scheduler.State, due func() bool, send func(string, string, ...*mdm.Command)) error {
	if isInstallStep(st.Step) && st.Awaiting == "" && due() {
		cmd, err := e.command(tplKey{requestType: "DeviceInformation"})
		if err != nil {
			return err
		}
		send(StepVerify, "confirm the installed version", cmd)
	}
	return nil
}

func isInstallStep(s string) bool { return s == StepInstallASAP || s == StepForce }

func (e *Enforcer) scanCommands() ([]*mdm.Command, error) {
	scan, err := e.command(tplKey{requestType: "ScheduleOSUpdateScan"})
	if err != nil {
		return nil, err
	}
	avail, err := e.command(tplKey{requestType: "AvailableOSUpdates"})
	if err != nil {
		return nil, err
	}
	return []*mdm.Command{scan, avail}, nil
}

// schedule builds a ScheduleOSUpdate for the target: by product key when
// known, else by ProductVersion (macOS 12+).
func (e *Enforcer) schedule(st *scheduler.State, os catalog.Version, action string, highPriority bool) (*mdm.Command, error) {
	k := tplKey{requestType: "ScheduleOSUpdate", action: action, productKey: st.ProductKey, high: highPriority}
	if k.productKey == "" {
		k.version = st.Target
	}
	return e.command(k)
}

// HandleResult implements scheduler.Enforcer.
func (e *Enforcer) HandleResult(ctx context.Context, st *scheduler.State, res scheduler.Result, now time.Time) ([]scheduler.Transition, error) {
	if st.Path == softwareupdate.PathDeclarative {
		return nil, nil
	}
	current := res.CommandUUID != "" && res.CommandUUID == st.StepCommand
	var events []scheduler.Transition
	event := func(kind scheduler.EventKind, reason string) {
		events = append(events, scheduler.Transition{At: now, Kind: kind, Step: st.Step, Reason: reason, Target: st.Target, From: st.Phase})
	}
	fail := func(reason string) {
		st.Attempts++
		retry := now.Add(e.backoff(st.Attempts))
		if st.Attempts >= e.cfg.MaxAttempts {
			retry = time.Time{}
			reason += fmt.Sprintf(" (gave up after %d attempts)", st.Attempts)
		}
		st.Fail(reason, now, retry)
		st.Step, st.Awaiting, st.NextCheck = "", "", time.Time{}
	}
	switch res.Status {
	case mdm.NotNow:
		if current {
			event(scheduler.EventResult, res.RequestType+": NotNow (the Mac will be asked again)")
		}
		return events, nil
	case mdm.Error, mdm.CommandFormatError:
		if current || (res.RequestType == "ScheduleOSUpdateScan" && st.Step == StepScan && st.Awaiting != "") {
			fail(res.RequestType + " " + string(res.Status) + ": " + chainText(res.ErrorChain))
		}
		return events, nil
	case mdm.Acknowledged:
	default:
		return nil, nil
	}

	switch res.RequestType {
	case "AvailableOSUpdates":
		list, err := DecodeAvailableOSUpdates(res.Raw)
		if err != nil {
			if current {
				fail(err.Error())
			}
			return events, nil
		}
		if key := productKeyFor(list, st.Target); key != "" {
			st.ProductKey = key
			if current {
				event(scheduler.EventResult, "AvailableOSUpdates: "+key+" offers "+st.Target)
			}
		}
		if current {
			st.Awaiting = ""
			if st.ProductKey == "" {
				event(scheduler.EventResult, fmt.Sprintf("AvailableOSUpdates: %s not offered yet (%d updates listed); scanning again later", st.Target, len(list)))
				st.Step, st.NextCheck = "", now.Add(e.cfg.RescanEvery)
				if st.Phase != softwareupdate.PhasePending && st.Phase != "" {
					// Past the pending phase the Mac needs the update now:
					// surface it (macOS 12+ can still be sent ProductVersion).
					st.Attempts++
					st.Fail("no update available: the Mac does not offer "+st.Target, now, now.Add(e.cfg.RescanEvery))
				}
			}
		}
	case "ScheduleOSUpdate":
		items, err := DecodeUpdateResults(res.Raw)
		if err != nil {
			if current {
				fail(err.Error())
			}
			return events, nil
		}
		it := pickResult(items, st.ProductKey)
		if it == nil {
			if current {
				fail("ScheduleOSUpdate: empty UpdateResults")
			}
			return events, nil
		}
		if it.ProductKey != "" && it.InstallAction != "Error" && st.ProductKey == "" {
			st.ProductKey = it.ProductKey
		}
		if !current {
			return events, nil
		}
		st.Awaiting = ""
		requested := requestedAction(st.Step, st.InstallAction)
		if it.InstallAction == "Error" {
			st.ProductKey = "" // scan again
			fail("ScheduleOSUpdate: update not available: " + resultChain(it))
			return events, nil
		}
		if !okStatus(it.Status) {
			fail("ScheduleOSUpdate " + orDash(it.InstallAction) + ": " + orDash(it.Status))
			return events, nil
		}
		if requested != "" && it.InstallAction != "" && it.InstallAction != requested {
			event(scheduler.EventResult, "the Mac substituted "+it.InstallAction+" for "+requested+" ("+it.Status+")")
			if isInstallStep(st.Step) && !installs(it.InstallAction) {
				st.InstallAction = ActionInstallASAP // next attempt: the action that installs
			}
		} else {
			event(scheduler.EventResult, "ScheduleOSUpdate "+orDash(it.InstallAction)+": "+orDash(it.Status))
		}
		if isInstallStep(st.Step) {
			st.NextCheck = now.Add(e.cfg.VerifyAfter)
		} else {
			st.NextCheck = now.Add(e.cfg.PollEvery)
		}
	case "OSUpdateStatus":
		list, err := DecodeOSUpdateStatus(res.Raw)
		if err != nil {
			if current {
				fail(err.Error())
			}
			return events, nil
		}
		if !current {
			return events, nil
		}
		st.Awaiting = ""
		s := pickStatus(list, st.ProductKey)
		switch {
		case s == nil:
			// Nothing in progress: the download vanished (or never started).
			st.Attempts++
			if st.Attempts >= e.cfg.MaxAttempts {
				st.Fail(fmt.Sprintf("OSUpdateStatus: no download in progress after %d attempts", st.Attempts), now, time.Time{})
				st.Step = ""
				return events, nil
			}
			event(scheduler.EventResult, "OSUpdateStatus: no download in progress; downloading again")
			st.Step, st.NextCheck = "", time.Time{}
		case s.IsDownloaded:
			if st.ProductKey == "" {
				st.ProductKey = s.ProductKey
			}
			st.Downloaded, st.NextCheck = true, time.Time{}
			event(scheduler.EventResult, "OSUpdateStatus: "+s.ProductKey+" downloaded")
		default:
			st.NextCheck = now.Add(e.cfg.PollEvery)
			event(scheduler.EventResult, fmt.Sprintf("OSUpdateStatus: %s %s %.0f%%", s.ProductKey, s.Status, s.DownloadPercentComplete*100))
		}
	case "DeviceInformation":
		if current && st.Step == StepVerify {
			// The scheduler re-evaluates with the fresh inventory: compliant
			// ends enforcement; otherwise the next install attempt waits for
			// the backoff.
			st.Awaiting = ""
			st.NextCheck = now.Add(e.backoff(max(st.Attempts, 1)))
			event(scheduler.EventResult, "DeviceInformation: running "+st.Facts.OSVersion)
		}
	}
	return events, nil
}

func requestedAction(step, install string) string {
	switch step {
	case StepDownload:
		return ActionDownloadOnly
	case StepInstallASAP, StepForce:
		return install
	}
	return ""
}

func installs(action string) bool {
	return action == ActionInstallASAP || action == ActionInstallForceRestart || action == ActionDefault
}

// okStatus reports whether an UpdateResults status means progress. Every
// other status (DownloadFailed, DownloadInsufficientSpace, InstallFailed,
// ...) is a failure to surface.
func okStatus(s string) bool {
	switch s {
	case "Idle", "Downloading", "Installing", "":
		return true
	}
	return false
}

// productKeyFor finds the update offering exactly version target (not a
// supplemental one).
func productKeyFor(list []AvailableUpdate, target string) string {
	want, err := catalog.ParseVersion(target)
	if err != nil {
		return ""
	}
	for _, u := range list {
		if u.SupplementalOSVersionExtra != "" || u.ProductKey == "" {
			continue
		}
		if v, err := catalog.ParseVersion(u.Version); err == nil && v == want {
			return u.ProductKey
		}
	}
	return ""
}

func pickResult(items []UpdateResult, key string) *UpdateResult {
	for i := range items {
		if key != "" && items[i].ProductKey == key {
			return &items[i]
		}
	}
	if len(items) > 0 {
		return &items[0]
	}
	return nil
}

func pickStatus(list []UpdateStatus, key string) *UpdateStatus {
	for i := range list {
		if list[i].ProductKey == key && key != "" {
			return &list[i]
		}
	}
	if key == "" && len(list) == 1 {
		return &list[0]
	}
	return nil
}

func chainText(chain []mdm.ErrorChainItem) string {
	if len(chain) == 0 {
		return "no error chain"
	}
	parts := make([]string, 0, len(chain))
	for _, c := range chain {
		d := c.USEnglishDescription
		if d == "" {
			d = c.LocalizedDescription
		}
		parts = append(parts, fmt.Sprintf("%s %d: %s", c.ErrorDomain, c.ErrorCode, truncate(d)))
	}
	return strings.Join(parts, "; ")
}

func resultChain(it *UpdateResult) string {
	if len(it.ErrorChain) == 0 {
		return orDash(it.ProductKey)
	}
	c := it.ErrorChain[0]
	return fmt.Sprintf("%s %d: %s", c.ErrorDomain, c.ErrorCode, truncate(c.LocalizedDescription))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return truncate(s)
}

func truncate(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}
