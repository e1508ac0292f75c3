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
	"errors"
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
	StepScan        = "scan"         // ScheduleOSUpdateScan: starts a scan in the background
	StepList        = "list"         // AvailableOSUpdates, once the scan had time to run
	StepListAgain   = "list-again"   // AvailableOSUpdates again: the first list lacked the target
	StepDownload    = "download"     // ScheduleOSUpdate DownloadOnly
	StepStatus      = "status"       // OSUpdateStatus
	StepInstallASAP = "install-asap" // ScheduleOSUpdate InstallASAP (the user's Start Now)
	StepForce       = "install-force"
	StepVerify      = "verify" // DeviceInformation after an install
	// StepRestarted: the Mac acknowledged a ScheduleOSUpdate without
	// UpdateResults, as Apple documents after a restart; a DeviceInformation
	// follows at once.
	StepRestarted = "restarted"
	// StepGaveUp: the last install attempt failed; the failure is shown and
	// one more forced install goes out each RetryDaily.
	StepGaveUp = "gave-up"
	// StepRescan: a ScheduleOSUpdate by ProductVersion answered that the
	// Mac does not offer the target (Software Update offers only the
	// latest patch of a major): AvailableOSUpdates lists what it offers.
	StepRescan = "rescan"
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
	// not take; it doubles per attempt up to RetryMax (1 h, 24 h). Before
	// the deadline a retry never waits past the start of the enforce phase.
	RetryBase, RetryMax time.Duration
	// MaxAttempts bounds the install commands sent for a target (5): Start
	// Now and forced installs together. Then the Mac shows failed with the
	// last reason and is retried once per RetryDaily.
	MaxAttempts int
	// MaxStartNow bounds the installs the user's Start Now sends before the
	// deadline (2), so that forced installs always remain.
	MaxStartNow int
	// RetryDaily is how often a Mac that used up MaxAttempts gets one more
	// forced install (24 h).
	RetryDaily time.Duration
	// RescanEvery is how long to wait before scanning again when the device
	// does not offer the target yet (12 h).
	RescanEvery time.Duration
	// ScanWait is how long a scan is given to run before AvailableOSUpdates
	// is asked (10 min): ScheduleOSUpdateScan only starts it, and a list
	// asked sooner may be the one from before.
	ScanWait time.Duration
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
	if c.MaxStartNow <= 0 {
		c.MaxStartNow = 2
	}
	if c.MaxStartNow >= c.MaxAttempts {
		c.MaxStartNow = c.MaxAttempts - 1
	}
	if c.RetryDaily <= 0 {
		c.RetryDaily = 24 * time.Hour
	}
	if c.ScanWait <= 0 {
		c.ScanWait = 10 * time.Minute
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
	tpls  map[tplKey]template
}

// template is a cached command encoding with its description (tplKey.String).
type template struct {
	tpl  *mdm.CommandTemplate
	desc string
}

type tplKey struct {
	requestType, action, productKey, version string
	high                                     bool
}

// String describes a ScheduleOSUpdate as sent: "ScheduleOSUpdate
// InstallForceRestart MSU_UPDATE_..." ("/High" for the priority).
func (k tplKey) String() string {
	s := k.requestType + " " + k.action
	if k.high {
		s += "/High"
	}
	if k.productKey != "" {
		return s + " " + k.productKey
	}
	return s + " version " + k.version
}

// maxTemplates bounds the cache; it is emptied when full (a handful of
// distinct commands is the normal case).
const maxTemplates = 256

// command returns a fresh command for k and k's description, encoding its
// payload and describing it at most once.
func (e *Enforcer) command(k tplKey) (*mdm.Command, string, error) {
	e.tplMu.Lock()
	defer e.tplMu.Unlock()
	if t, ok := e.tpls[k]; ok {
		return t.tpl.New(), t.desc, nil
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
		return nil, "", err
	}
	if e.tpls == nil || len(e.tpls) >= maxTemplates {
		e.tpls = make(map[tplKey]template)
	}
	e.tpls[k] = template{tpl: t, desc: k.String()}
	return t.New(), e.tpls[k].desc, nil
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
			st.Fail("ScheduleOSUpdate needs a supervised Mac: this Mac is not supervised", now, now.Add(e.cfg.RetryMax))
		}
		return act, nil
	}
	os, _ := catalog.ParseVersion(st.Facts.OSVersion)
	var sendErr error
	send := func(step, reason string, k tplKey) {
		cmd, desc, err := e.command(k)
		if err != nil {
			sendErr = err
			return
		}
		if k.requestType == "ScheduleOSUpdate" {
			reason += ": " + desc // history says exactly what was sent
		}
		st.Step, st.StepAt = step, now
		st.StepCommand, st.Awaiting = cmd.UUID, cmd.RequestType
		st.NextCheck = time.Time{}
		act.Commands = append(act.Commands, cmd)
		act.Events = append(act.Events, scheduler.Transition{At: now, Kind: scheduler.EventStep, Step: step,
			Reason: reason, Target: st.Target, Deadline: st.Deadline, From: st.Phase})
	}
	note := func(reason string) {
		act.Events = append(act.Events, scheduler.Transition{At: now, Kind: scheduler.EventResult, Step: st.Step,
			Reason: reason, Target: st.Target, From: st.Phase})
	}
	due := func() bool { return st.NextCheck.IsZero() || !now.Before(st.NextCheck) }
	canUseVersion := os.Compare(v12) >= 0 // ProductVersion needs macOS 12
	needScan := st.ProductKey == "" && (!canUseVersion || st.Step == StepRescan)
	// installAttempt sends an install command, counted once, when it is sent.
	installAttempt := func(step, action, why string) {
		st.Attempts++
		st.InstallAction = action
		send(step, fmt.Sprintf("%s (install attempt %d of %d)", why, st.Attempts, e.cfg.MaxAttempts), e.scheduleKey(st, action, false))
	}

	// Follow-ups of an install, in every phase: verify the version.
	switch {
	case st.Step == StepRestarted && st.Awaiting == "":
		send(StepVerify, "the Mac acknowledged ScheduleOSUpdate without UpdateResults (it restarted): confirm the installed version",
			tplKey{requestType: "DeviceInformation"})
		return act, sendErr
	case isInstallStep(st.Step):
		if st.Awaiting == "" && due() {
			send(StepVerify, "confirm the installed version", tplKey{requestType: "DeviceInformation"})
		}
		return act, sendErr
	case st.Step == StepVerify && st.Awaiting != "":
		return act, nil
	}

	switch in.Decision.Phase {
	case softwareupdate.PhasePending:
		if st.ProductKey == "" {
			e.scanStep(st, now, due, send, "learn the product key of "+st.Target)
		}
		return act, sendErr

	case softwareupdate.PhaseNotify, softwareupdate.PhaseCountdown:
		if st.Step == StepVerify {
			// A Start Now install (or an acknowledgement without
			// UpdateResults) did not change the version: the press is
			// used up; check the download, the deadline still applies.
			if !st.StartNowAt.IsZero() {
				note("Start Now did not install " + st.Target + ": the Mac still runs " + orDash(st.Facts.OSVersion))
				st.StartNowAt = time.Time{}
			}
			st.Step, st.Downloaded, st.NextCheck = StepStatus, false, time.Time{}
		}
		if !st.StartNowAt.IsZero() {
			if st.Attempts >= e.cfg.MaxStartNow {
				note(fmt.Sprintf("Start Now not sent: %d installs already sent before the deadline", st.Attempts))
				st.StartNowAt = time.Time{}
			} else if !needScan && (st.Awaiting == "" || st.Step == StepDownload || st.Step == StepStatus || isScanStep(st.Step)) {
				installAttempt(StepInstallASAP, ActionInstallASAP, "the user chose Start Now: InstallASAP")
				return act, sendErr
			}
		}
		switch {
		case st.Downloaded:
			st.NextCheck = time.Time{}
		case st.Step == "" || isScanStep(st.Step):
			if needScan || (isScanStep(st.Step) && st.Awaiting != "" && !canUseVersion) {
				e.scanStep(st, now, due, send, "learn the product key of "+st.Target)
				return act, sendErr
			}
			if e.fullInstaller(st) {
				// A full installer takes InstallASAP only (it downloads and
				// installs in one step): nothing to pre-download.
				st.NextCheck = time.Time{}
				return act, nil
			}
			send(StepDownload, "deadline within 5 days: download "+st.Target,
				e.scheduleKey(st, ActionDownloadOnly, !st.MajorUpgrade && os.Compare(v12_3) >= 0))
		case (st.Step == StepDownload || st.Step == StepStatus) && st.Awaiting == "" && due():
			send(StepStatus, "check the download of "+st.Target, tplKey{requestType: "OSUpdateStatus"})
		}
		return act, sendErr

	case softwareupdate.PhaseEnforce:
		if !st.StartNowAt.IsZero() && st.Step == StepVerify {
			// A Start Now install from the countdown did not happen; its
			// InstallASAP is not a substitution by the Mac.
			note("Start Now did not install " + st.Target + ": the Mac still runs " + orDash(st.Facts.OSVersion))
			st.StartNowAt, st.InstallAction = time.Time{}, ActionInstallForceRestart
		}
		action := ActionInstallForceRestart
		why := "deadline passed: force the install and restart"
		switch {
		case st.MajorUpgrade:
			action, why = ActionInstallASAP, "deadline passed: major upgrade with InstallASAP"
		case os.Compare(v11) < 0:
			action, why = ActionInstallASAP, "deadline passed: InstallASAP (InstallForceRestart needs macOS 11)"
		case st.InstallAction != "" && st.InstallAction != ActionInstallForceRestart && st.Attempts > 0 &&
			(st.Step == StepVerify || st.Step == StepGaveUp):
			action, why = st.InstallAction, "deadline passed: "+st.InstallAction+" (the Mac substituted another action)"
		}
		switch {
		case st.Step == StepGaveUp:
			// The daily retry after the last attempt.
			installAttempt(StepForce, action, why+"; daily retry")
			return act, sendErr
		case st.Step == StepVerify:
			if !due() {
				return act, nil
			}
			if st.Attempts >= e.cfg.MaxAttempts {
				e.giveUp(st, now, fmt.Sprintf("still on %s after %d install attempts", orDash(st.Facts.OSVersion), st.Attempts))
				return act, nil
			}
			installAttempt(StepForce, action, why)
			return act, sendErr
		case needScan:
			e.scanStep(st, now, due, send, "learn the product key of "+st.Target+" before forcing the install")
			return act, sendErr
		}
		// The deadline step goes out whatever else is outstanding.
		if st.Attempts >= e.cfg.MaxAttempts {
			e.giveUp(st, now, fmt.Sprintf("still on %s after %d install attempts", orDash(st.Facts.OSVersion), st.Attempts))
			return act, nil
		}
		installAttempt(StepForce, action, why)
	}
	return act, sendErr
}

// scanStep advances the scan: ScheduleOSUpdateScan starts a scan in the
// background; AvailableOSUpdates is asked ScanWait later (and once more
// if the target is missing); a Mac that still does not offer it is
// scanned again after RescanEvery.
func (e *Enforcer) scanStep(st *scheduler.State, now time.Time, due func() bool, send func(string, string, tplKey), why string) {
	if st.Awaiting != "" || !due() {
		return
	}
	switch st.Step {
	case StepScan:
		send(StepList, "list the updates the scan found ("+why+")", tplKey{requestType: "AvailableOSUpdates"})
	case StepList:
		if st.ProductKey == "" {
			send(StepListAgain, "list the updates again: "+st.Target+" was missing", tplKey{requestType: "AvailableOSUpdates"})
		}
	case StepRescan:
		send(StepRescan, "list the updates the Mac offers: "+st.Target+" by version was not available",
			tplKey{requestType: "AvailableOSUpdates"})
	case "", StepListAgain:
		if st.ProductKey == "" {
			send(StepScan, why, tplKey{requestType: "ScheduleOSUpdateScan"})
		}
	}
}

// giveUp shows the failure after the last install attempt; one more forced
// install goes out each RetryDaily.
func (e *Enforcer) giveUp(st *scheduler.State, now time.Time, reason string) {
	st.Fail(reason+fmt.Sprintf(" (gave up after %d install attempts; retrying daily)", st.Attempts), now, now.Add(e.cfg.RetryDaily))
	st.Step, st.Awaiting, st.NextCheck = StepGaveUp, "", time.Time{}
}

func isInstallStep(s string) bool { return s == StepInstallASAP || s == StepForce }

func isScanStep(s string) bool {
	return s == StepScan || s == StepList || s == StepListAgain || s == StepRescan
}

// fullInstaller reports whether the chosen update is an InstallAssistant
// full installer rather than an OTA update (see isOTA): macOS takes only
// InstallASAP for it.
func (e *Enforcer) fullInstaller(st *scheduler.State) bool {
	return st.MajorUpgrade && st.ProductKey != "" && !isOTAKey(st.ProductKey)
}

// scheduleKey names a ScheduleOSUpdate for the target: by product key when
// known, else by ProductVersion (macOS 12+). A full installer is only ever
// sent InstallASAP.
func (e *Enforcer) scheduleKey(st *scheduler.State, action string, highPriority bool) tplKey {
	if e.fullInstaller(st) {
		action, highPriority = ActionInstallASAP, false
	}
	k := tplKey{requestType: "ScheduleOSUpdate", action: action, productKey: st.ProductKey, high: highPriority}
	if k.productKey == "" {
		k.version = st.Target
	}
	return k
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
	fail := func(reason string) { e.fail(st, now, reason) }
	switch res.Status {
	case mdm.NotNow:
		if current {
			event(scheduler.EventResult, res.RequestType+": NotNow (the Mac will be asked again)")
		}
		return events, nil
	case mdm.Error, mdm.CommandFormatError:
		if current {
			fail(res.RequestType + " " + string(res.Status) + ": " + chainText(res.ErrorChain))
		}
		return events, nil
	case mdm.Acknowledged:
	default:
		return nil, nil
	}

	switch res.RequestType {
	case "ScheduleOSUpdateScan":
		if current {
			st.Awaiting, st.Errors = "", 0
			st.NextCheck = now.Add(e.cfg.ScanWait)
			event(scheduler.EventResult, "ScheduleOSUpdateScan: scan started; the list is asked at "+st.NextCheck.UTC().Format(time.RFC3339))
		}
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
		}
		if !current {
			return events, nil
		}
		st.Awaiting, st.Errors = "", 0
		taken := fmt.Sprintf("list taken at %s, %s after the scan started", now.UTC().Format(time.RFC3339), now.Sub(st.StepAt).Round(time.Second))
		if st.ProductKey != "" {
			offers := st.Target
			for _, u := range list {
				if u.ProductKey == st.ProductKey && u.Version != "" && u.Version != st.Target {
					offers = truncate(u.Version) + " (at or above the target " + st.Target + ")"
				}
			}
			event(scheduler.EventResult, "AvailableOSUpdates: "+st.ProductKey+" offers "+offers+" ("+taken+")")
			return events, nil
		}
		if st.Step == StepList {
			st.NextCheck = now.Add(e.cfg.ScanWait)
			event(scheduler.EventResult, fmt.Sprintf("AvailableOSUpdates: %s not listed (%d updates, %s); asking again at %s",
				st.Target, len(list), taken, st.NextCheck.UTC().Format(time.RFC3339)))
			return events, nil
		}
		event(scheduler.EventResult, fmt.Sprintf("AvailableOSUpdates: %s not offered yet (%d updates, %s); scanning again later", st.Target, len(list), taken))
		st.Step, st.NextCheck = "", now.Add(e.cfg.RescanEvery)
		if st.Phase != softwareupdate.PhasePending && st.Phase != "" {
			// Past the pending phase the Mac needs the update now:
			// surface it (macOS 12+ can still be sent ProductVersion).
			st.Fail("no update available: the Mac does not offer "+st.Target, now, capRetry(st, now, now.Add(e.cfg.RescanEvery)))
		}
	case "ScheduleOSUpdate":
		items, err := DecodeUpdateResults(res.Raw)
		if errors.Is(err, ErrNoUpdateResults) {
			// Apple: after a restart the Mac may acknowledge a re-sent
			// ScheduleOSUpdate without UpdateResults. Not a failure: ask
			// which version it runs now.
			if current {
				st.Awaiting, st.Errors, st.NextCheck = "", 0, time.Time{}
				st.Step = StepRestarted
				event(scheduler.EventResult, "ScheduleOSUpdate acknowledged without UpdateResults (the Mac restarted): asking for its version")
			}
			return events, nil
		}
		if err != nil {
			if current {
				fail(err.Error())
			}
			return events, nil
		}
		byVersion := st.ProductKey == ""
		it := pickResult(items, st.ProductKey)
		if it.ProductKey != "" && it.InstallAction != "Error" && st.ProductKey == "" {
			st.ProductKey = it.ProductKey
		}
		if !current {
			return events, nil
		}
		st.Awaiting = ""
		requested := requestedAction(st.Step, st.InstallAction)
		if it.InstallAction == "Error" && byVersion && st.Step != StepRescan {
			// Sent by ProductVersion: the Mac may offer only a newer patch
			// than the target. List what it offers and take its key; a Mac
			// that offers nothing at or above the target is failed then.
			st.Errors, st.NextCheck = 0, time.Time{}
			st.Step = StepRescan
			event(scheduler.EventResult, "ScheduleOSUpdate: "+st.Target+" by version not available ("+resultChain(it)+
				"); listing the updates the Mac offers")
			return events, nil
		}
		if it.InstallAction == "Error" {
			st.ProductKey = "" // scan again
			fail("ScheduleOSUpdate: update not available: " + resultChain(it))
			return events, nil
		}
		if !okStatus(it.Status) {
			fail("ScheduleOSUpdate " + orDash(it.InstallAction) + ": " + orDash(it.Status) + resultChainSuffix(it))
			return events, nil
		}
		st.Errors = 0
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
			st.Errors++
			if st.Errors >= e.cfg.MaxAttempts {
				fail("OSUpdateStatus: no download in progress after " + fmt.Sprint(st.Errors) + " downloads")
				return events, nil
			}
			event(scheduler.EventResult, "OSUpdateStatus: no download in progress; downloading again")
			st.Step, st.NextCheck = "", time.Time{}
		case s.IsDownloaded:
			if st.ProductKey == "" {
				st.ProductKey = s.ProductKey
			}
			st.Downloaded, st.NextCheck, st.Errors = true, time.Time{}, 0
			event(scheduler.EventResult, "OSUpdateStatus: "+s.ProductKey+" downloaded")
		default:
			st.NextCheck, st.Errors = now.Add(e.cfg.PollEvery), 0
			event(scheduler.EventResult, fmt.Sprintf("OSUpdateStatus: %s %s %.0f%%", s.ProductKey, s.Status, s.DownloadPercentComplete*100))
		}
	case "DeviceInformation":
		if current && st.Step == StepVerify {
			// The scheduler re-evaluates with the fresh inventory: compliant
			// ends enforcement; otherwise the next install attempt waits for
			// the backoff.
			st.Awaiting = ""
			st.NextCheck = now.Add(e.backoff(max(st.Attempts, 1)))
			event(scheduler.EventResult, "DeviceInformation: running "+orDash(st.Facts.OSVersion))
		}
	}
	return events, nil
}

// fail surfaces a failed answer. Before the deadline it is retried with
// backoff, never later than the start of the enforce phase, so the deadline
// step always goes out on time. A failed install after the last attempt
// is shown and retried daily.
func (e *Enforcer) fail(st *scheduler.State, now time.Time, reason string) {
	if isInstallStep(st.Step) && st.Attempts >= e.cfg.MaxAttempts {
		e.giveUp(st, now, reason)
		return
	}
	st.Errors++
	n := st.Errors
	if isInstallStep(st.Step) {
		n = st.Attempts // install attempts back off on their own count
	}
	st.Fail(reason, now, capRetry(st, now, now.Add(e.backoff(n))))
	st.Step, st.Awaiting, st.NextCheck = "", "", time.Time{}
}

// capRetry moves a retry due after the start of the enforce phase to that
// start when now is before it.
func capRetry(st *scheduler.State, now, retry time.Time) time.Time {
	if st.Deadline.IsZero() {
		return retry
	}
	if enforce := st.Deadline.Add(softwareupdate.CountdownWindow); now.Before(enforce) && retry.After(enforce) {
		return enforce
	}
	return retry
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

// productKeyFor chooses the update for target, by the entries' fields and
// never by their order: exactly target if offered, else the lowest offered
// version above it in target's major (Software Update offers only the
// latest patch of a major, so once a newer patch is out the target itself
// is gone). Rapid Security Responses, configuration data and firmware are
// skipped; an OTA update is preferred to an InstallAssistant full installer
// (which macOS 13 and earlier also list for a major upgrade, with
// IsMajorOSUpdate and keys such as _MACOS_14.7.3); ties go to the smallest
// key.
func productKeyFor(list []AvailableUpdate, target string) string {
	want, err := catalog.ParseVersion(target)
	if err != nil {
		return ""
	}
	best, bestRank, bestV := "", 0, catalog.Version{}
	for _, u := range list {
		if u.ProductKey == "" || u.SupplementalOSVersionExtra != "" || u.IsSecurityResponse || u.IsConfigDataUpdate || u.IsFirmwareUpdate {
			continue
		}
		v, err := catalog.ParseVersion(u.Version)
		if err != nil || v.Less(want) || v.Major() != want.Major() {
			continue
		}
		rank := 1 // OTA
		if u.IsMajorOSUpdate && !isOTAKey(u.ProductKey) {
			rank = 2 // full installer
		}
		switch c := v.Compare(bestV); {
		case best == "", c < 0, c == 0 && (rank < bestRank || rank == bestRank && u.ProductKey < best):
			best, bestRank, bestV = u.ProductKey, rank, v
		}
	}
	return best
}

// isOTAKey reports whether a product key names an OTA update. macOS names
// them MSU_UPDATE_<build>_patch_<version>[_minor|_major|_rsr] (observed, not
// documented: PROTOCOL.md §5.1). A major update under another key is an
// InstallAssistant full installer, which takes InstallASAP only: macOS 14
// stopped listing those, and OTA updates "support all InstallAction
// options" (AvailableOSUpdates schema).
func isOTAKey(k string) bool { return strings.HasPrefix(k, "MSU_UPDATE_") }

// pickResult returns the entry for key, else the first (items is not empty).
func pickResult(items []UpdateResult, key string) *UpdateResult {
	for i := range items {
		if key != "" && items[i].ProductKey == key {
			return &items[i]
		}
	}
	return &items[0]
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

// resultChainSuffix appends Apple's error chain of an UpdateResults entry.
func resultChainSuffix(it *UpdateResult) string {
	if len(it.ErrorChain) == 0 {
		return ""
	}
	return " (" + resultChain(it) + ")"
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
