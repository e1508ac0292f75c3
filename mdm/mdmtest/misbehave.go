package mdmtest

import (
	"context"
	"time"
)

// Misbehaviours: what real Macs do to an MDM server's software update
// commands beyond the happy path, switched on per device for tests. They sit
// below WithHandler handlers (in Builtin), so a handler that records
// commands and calls Builtin sees every command.

type timedAnswer struct {
	status string
	until  time.Time
	chain  []ErrorChainItem
}

type misbehaviour struct {
	answers map[string]timedAnswer // by request type
	// restartMidUpdate: installs whose report is lost in the restart.
	restartMidUpdate int
	// lost: commands whose report was lost; the re-sent command is
	// acknowledged without UpdateResults.
	lost map[string]bool
	// ignoreASAP: InstallASAP commands acknowledged without installing.
	ignoreASAP int
	// scanTakes: how long a scan runs before AvailableOSUpdates shows it.
	scanTakes   time.Duration
	pendingScan *scanState
}

// AnswerErrorUntil makes the device answer every command of requestType
// with Error and chain (a generic one if empty) until the clock reaches
// until, changing no state: a Mac whose software update service keeps
// failing for days. An until already past ends it.
func (d *Device) AnswerErrorUntil(requestType string, until time.Time, chain ...ErrorChainItem) {
	if len(chain) == 0 {
		chain = []ErrorChainItem{{ErrorCode: 12000, ErrorDomain: "MCMDMErrorDomain",
			LocalizedDescription: "Simulated failure", USEnglishDescription: "Simulated failure"}}
	}
	d.setAnswer(requestType, timedAnswer{status: StatusError, until: until, chain: chain})
}

// AnswerNotNowUntil makes the device answer every command of requestType
// with NotNow until the clock reaches until (a Mac whose user is busy for a
// week), changing no state.
func (d *Device) AnswerNotNowUntil(requestType string, until time.Time) {
	d.setAnswer(requestType, timedAnswer{status: StatusNotNow, until: until})
}

func (d *Device) setAnswer(requestType string, a timedAnswer) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mis.answers == nil {
		d.mis.answers = make(map[string]timedAnswer)
	}
	d.mis.answers[requestType] = a
}

// RestartMidUpdate makes the next n installing ScheduleOSUpdate commands
// (InstallASAP, InstallForceRestart, Default) restart the Mac before it
// reports: the update installs, the Mac is offline until it is back on the
// new OS, and the server, which never got the report, sends the command
// again; the Mac then acknowledges it without UpdateResults, as Apple
// documents.
func (d *Device) RestartMidUpdate(n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.mis.restartMidUpdate = n
}

// IgnoreInstallASAP makes the next n ScheduleOSUpdate InstallASAP commands
// be acknowledged (Idle) without anything being installed: the user's Start
// Now that does not happen (the countdown was dismissed, the update was not
// ready, the Mac was on battery).
func (d *Device) IgnoreInstallASAP(n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.mis.ignoreASAP = n
}

// SetScanDuration makes every software update scan take dur on the clock:
// ScheduleOSUpdateScan only starts it (ScanInitiated), and AvailableOSUpdates
// returns the previous list until it is done.
func (d *Device) SetScanDuration(dur time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.mis.scanTakes = dur
}

// misbehave answers cmd when a misbehaviour applies.
func (d *Device) misbehave(ctx context.Context, cmd *Command) (Result, bool) {
	d.mu.Lock()
	now := d.clock.Now()
	if a, ok := d.mis.answers[cmd.RequestType]; ok {
		if now.Before(a.until) {
			d.mu.Unlock()
			return Result{Status: a.status, ErrorChain: append([]ErrorChainItem(nil), a.chain...)}, true
		}
		delete(d.mis.answers, cmd.RequestType)
	}
	if cmd.RequestType != "ScheduleOSUpdate" || !d.IsSupervised {
		d.mu.Unlock()
		return Result{}, false
	}
	if d.mis.lost[cmd.CommandUUID] {
		delete(d.mis.lost, cmd.CommandUUID)
		d.mu.Unlock()
		return Result{Status: StatusAcknowledged}, true // no UpdateResults
	}
	action := installActionOf(cmd)
	switch {
	case action == ActionInstallASAP && d.mis.ignoreASAP > 0:
		d.mis.ignoreASAP--
		var key string
		if u, ok := d.findUpdateLocked(productOf(cmd)); ok {
			key = u.ProductKey
		}
		d.mu.Unlock()
		return Result{Status: StatusAcknowledged, Fields: map[string]any{"UpdateResults": []any{
			map[string]any{"ProductKey": key, "InstallAction": ActionInstallASAP, "Status": UpdateIdle}}}}, true
	case (action == ActionInstallASAP || action == ActionInstallForceRestart || action == ActionDefault) && d.mis.restartMidUpdate > 0:
		d.mis.restartMidUpdate--
		d.mu.Unlock()
		res := d.scheduleOSUpdate(cmd)
		d.mu.Lock()
		defer d.mu.Unlock()
		var done time.Time
		for _, j := range d.jobs {
			if j.install {
				at := j.installStart
				if at.IsZero() {
					at = j.downloadDone
				}
				if end := at.Add(d.timings.Install); end.After(done) {
					done = end
				}
			}
		}
		if done.IsZero() {
			return res, true // nothing installs: the report goes out
		}
		// Offline from now until the Mac is back on the new OS.
		if until := done.Add(d.timings.Restart); until.After(d.downUntil) {
			d.downUntil = until
		}
		if d.mis.lost == nil {
			d.mis.lost = make(map[string]bool)
		}
		d.mis.lost[cmd.CommandUUID] = true
		return Result{Status: StatusAcknowledged, drop: true}, true
	}
	d.mu.Unlock()
	return Result{}, false
}

func installActionOf(cmd *Command) string {
	var v struct {
		Command struct {
			Updates []struct{ InstallAction string }
		}
	}
	if err := cmd.Decode(&v); err != nil || len(v.Command.Updates) == 0 {
		return ""
	}
	return v.Command.Updates[0].InstallAction
}

func productOf(cmd *Command) (key, version string) {
	var v struct {
		Command struct {
			Updates []struct{ ProductKey, ProductVersion string }
		}
	}
	if err := cmd.Decode(&v); err != nil || len(v.Command.Updates) == 0 {
		return "", ""
	}
	return v.Command.Updates[0].ProductKey, v.Command.Updates[0].ProductVersion
}

// startScanLocked starts a scan that takes scanTakes; advanceLocked makes
// it the current one when done. d.mu must be held.
func (d *Device) startScanLocked(now time.Time, forced bool) bool {
	if d.mis.scanTakes <= 0 {
		return false
	}
	d.mis.pendingScan = &scanState{at: now.Add(d.mis.scanTakes), forced: forced}
	return true
}

// finishScanLocked completes a pending scan whose time has come: its list
// is what the catalog offers then. d.mu must be held.
func (d *Device) finishScanLocked(now time.Time) {
	p := d.mis.pendingScan
	if p == nil || now.Before(p.at) {
		return
	}
	d.mis.pendingScan = nil
	d.scanLocked(p.at, p.forced)
}
