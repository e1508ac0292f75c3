package legacy

import (
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// Regression tests for issue 20, items 2, 3, 4, 9, 10 and 11: the legacy
// path against what Macs really do.

// step runs one Step at `at` in phase ph and returns the commands sent.
func step(t *testing.T, e *Enforcer, st *scheduler.State, ph softwareupdate.Phase, at time.Time) ([]string, scheduler.Action) {
	t.Helper()
	in := input(ph)
	in.Now = at
	act, err := e.Step(t.Context(), st, in)
	if err != nil {
		t.Fatal(err)
	}
	return describe(t, act.Commands), act
}

// answer reports on the state's outstanding command.
func answer(t *testing.T, e *Enforcer, st *scheduler.State, status mdm.Status, raw []byte, at time.Time, chain ...mdm.ErrorChainItem) []scheduler.Transition {
	t.Helper()
	ev, err := e.HandleResult(t.Context(), st, scheduler.Result{RequestType: st.Awaiting, CommandUUID: st.StepCommand, Status: status, Raw: raw, ErrorChain: chain}, at)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func reasons(acts ...scheduler.Action) string {
	var out []string
	for _, a := range acts {
		for _, ev := range a.Events {
			out = append(out, ev.Reason)
		}
	}
	return strings.Join(out, "\n")
}

// Item 2: after the restart the re-sent ScheduleOSUpdate is acknowledged
// without UpdateResults (PROTOCOL.md §5.1). That asks for the Mac's version
// at once; it is never a failure and never a reason for another install.
// On main it became the failure "ScheduleOSUpdate response without
// UpdateResults" and the forced install went out again after the backoff.
func TestAckWithoutUpdateResultsAsksForVersion(t *testing.T) {
	for _, raw := range map[string][]byte{
		"no UpdateResults":    report(t, map[string]any{}),
		"empty UpdateResults": report(t, map[string]any{"UpdateResults": []any{}}),
	} {
		e := New(Config{})
		st := baseState("15.1")
		if have, _ := step(t, e, st, softwareupdate.PhaseEnforce, now); len(have) != 1 || !strings.Contains(have[0], "InstallForceRestart") {
			t.Fatalf("enforce sent %q", have)
		}
		ev := answer(t, e, st, mdm.Acknowledged, raw, now.Add(8*time.Minute))
		if st.Failure != "" || st.Errors != 0 {
			t.Fatalf("acknowledgement without UpdateResults surfaced a failure: %q", st.Failure)
		}
		if len(ev) != 1 || !strings.Contains(ev[0].Reason, "without UpdateResults") {
			t.Errorf("events = %+v", ev)
		}
		// At once, not after VerifyAfter: the Mac is back and may be done.
		have, _ := step(t, e, st, softwareupdate.PhaseEnforce, now.Add(8*time.Minute))
		if strings.Join(have, ";") != "DeviceInformation" || st.Step != StepVerify || st.Attempts != 1 {
			t.Fatalf("after the acknowledgement: sent %q, step %q, attempts %d", have, st.Step, st.Attempts)
		}
	}
}

// Item 3: Error answers before the deadline are retried with backoff and
// shown, but never cancel the deadline: the forced install goes out at
// D+30 min. On main the fifth error gave up ("gave up after 5 attempts",
// no retry time) and no forced install was ever sent.
func TestErrorsBeforeDeadlineKeepTheDeadline(t *testing.T) {
	e := New(Config{})
	st := baseState("15.1")
	st.ProductKey = "K"
	D := now.Add(softwareupdate.NotifyWindow)
	st.Deadline = D
	enforce := D.Add(softwareupdate.CountdownWindow)
	chain := mdm.ErrorChainItem{ErrorCode: 12021, ErrorDomain: "MCMDMErrorDomain", USEnglishDescription: "Temporary failure"}

	at := now
	var retries []string
	for i := range 12 {
		st.Phase = softwareupdate.PhaseNotify
		have, _ := step(t, e, st, softwareupdate.PhaseNotify, at)
		if len(have) != 1 || !strings.HasPrefix(have[0], "ScheduleOSUpdate DownloadOnly") {
			t.Fatalf("error %d at %v: sent %q", i, at.Sub(now), have)
		}
		answer(t, e, st, mdm.Error, nil, at, chain)
		if st.RetryAt.IsZero() || st.RetryAt.After(enforce) || !strings.Contains(st.Failure, "12021") {
			t.Fatalf("error %d: failure %q retry %v (enforce starts %v)", i, st.Failure, st.RetryAt, enforce)
		}
		retries = append(retries, st.RetryAt.Sub(at).String())
		if !st.RetryAt.Before(enforce) {
			break
		}
		at = st.RetryAt
		st.ClearFailure() // as the scheduler does at RetryAt
	}
	if have, want := strings.Join(retries, " "), "1h0m0s 2h0m0s 4h0m0s 8h0m0s 16h0m0s 24h0m0s 24h0m0s 24h0m0s 17h30m0s"; have != want {
		t.Errorf("retries = %s, want %s (the last one capped at the deadline)", have, want)
	}
	if st.Attempts != 0 {
		t.Errorf("errors counted as install attempts: %d", st.Attempts)
	}
	// The deadline step goes out on time.
	st.ClearFailure()
	have, _ := step(t, e, st, softwareupdate.PhaseEnforce, enforce)
	if strings.Join(have, ";") != "ScheduleOSUpdate InstallForceRestart key=K" || st.Attempts != 1 {
		t.Fatalf("at the deadline: sent %q, attempts %d", have, st.Attempts)
	}
}

// Item 3: after the last forced attempt the Mac shows failed with Apple's
// error chain and is retried daily, one forced install a day.
func TestLastAttemptFailsWithChainAndRetriesDaily(t *testing.T) {
	e := New(Config{MaxAttempts: 2})
	st := baseState("15.1")
	st.ProductKey = "K"
	chain := mdm.ErrorChainItem{ErrorCode: 101, ErrorDomain: "SUMacControllerError", USEnglishDescription: "Install failed: disk busy"}
	at := now
	for i := range 2 {
		if have, _ := step(t, e, st, softwareupdate.PhaseEnforce, at); len(have) != 1 {
			t.Fatalf("attempt %d: sent %q", i+1, have)
		}
		answer(t, e, st, mdm.Error, nil, at, chain)
		if i == 0 {
			if st.RetryAt.Sub(at) != time.Hour {
				t.Fatalf("first failed attempt: retry %v", st.RetryAt.Sub(at))
			}
			at = st.RetryAt
			st.ClearFailure()
		}
	}
	if !strings.Contains(st.Failure, "SUMacControllerError 101: Install failed: disk busy") || !strings.Contains(st.Failure, "retrying daily") ||
		st.RetryAt.Sub(at) != 24*time.Hour || st.Step != StepGaveUp {
		t.Fatalf("after the last attempt: failure %q retry %v step %q", st.Failure, st.RetryAt.Sub(at), st.Step)
	}
	at = st.RetryAt
	st.ClearFailure()
	have, act := step(t, e, st, softwareupdate.PhaseEnforce, at)
	if len(have) != 1 || st.Attempts != 3 || !strings.Contains(reasons(act), "daily retry (install attempt 3 of 2)") {
		t.Fatalf("daily retry: sent %q, attempts %d, reasons %q", have, st.Attempts, reasons(act))
	}
	answer(t, e, st, mdm.Error, nil, at, chain)
	if st.Step != StepGaveUp || st.RetryAt.Sub(at) != 24*time.Hour {
		t.Fatalf("failed daily retry: step %q retry %v", st.Step, st.RetryAt.Sub(at))
	}
}

// Item 4: attempts count install commands, once each, when they are sent;
// history says what was sent. On main a failed answer counted again, so
// three installs were "attempt 1, 3 and 5 of 5".
func TestAttemptsCountInstallsSent(t *testing.T) {
	e := New(Config{})
	st := baseState("15.1")
	st.ProductKey = "K"
	at := now
	var sent []scheduler.Action
	for i := range 3 {
		have, act := step(t, e, st, softwareupdate.PhaseEnforce, at)
		if len(have) != 1 {
			t.Fatalf("attempt %d: sent %q (step %q)", i+1, have, st.Step)
		}
		sent = append(sent, act)
		answer(t, e, st, mdm.Acknowledged, updateResults(t, ActionInstallForceRestart, "InstallFailed"), at)
		at = st.RetryAt
		st.ClearFailure()
	}
	want := "deadline passed: force the install and restart (install attempt 1 of 5): ScheduleOSUpdate InstallForceRestart K\n" +
		"deadline passed: force the install and restart (install attempt 2 of 5): ScheduleOSUpdate InstallForceRestart K\n" +
		"deadline passed: force the install and restart (install attempt 3 of 5): ScheduleOSUpdate InstallForceRestart K"
	if have := reasons(sent...); have != want || st.Attempts != 3 {
		t.Errorf("attempts %d, history:\n%s\nwant:\n%s", st.Attempts, have, want)
	}
}

// Item 9: for a macOS 13 major upgrade the OTA entry is chosen over the
// full installer whatever the list order, and a full installer (when it is
// all there is) is only sent InstallASAP. On main the first entry of the
// target's version won.
func TestProductKeyPrefersOTAWhateverTheOrder(t *testing.T) {
	full := map[string]any{"ProductKey": "_MACOS_14.7.3", "Version": "14.7.3", "Build": "23H417", "IsMajorOSUpdate": true, "HumanReadableName": "macOS Sonoma"}
	ota := map[string]any{"ProductKey": "MSU_UPDATE_23H417_patch_14.7.3_major", "Version": "14.7.3", "Build": "23H417", "IsMajorOSUpdate": true}
	minor := map[string]any{"ProductKey": "MSU_UPDATE_22H527_patch_13.7.8_minor", "Version": "13.7.8", "Build": "22H527"}
	for name, list := range map[string][]any{
		"full installer first": {full, minor, ota},
		"OTA first":            {ota, minor, full},
	} {
		t.Run(name, func(t *testing.T) {
			e := New(Config{})
			st := baseState("13.6")
			st.Target, st.MajorUpgrade = "14.7.3", true
			st.Step, st.StepCommand, st.Awaiting, st.StepAt = StepList, "CMD", "AvailableOSUpdates", now
			answer(t, e, st, mdm.Acknowledged, report(t, map[string]any{"AvailableOSUpdates": list}), now)
			if st.ProductKey != "MSU_UPDATE_23H417_patch_14.7.3_major" {
				t.Fatalf("product key = %q", st.ProductKey)
			}
			have, _ := step(t, e, st, softwareupdate.PhaseNotify, now)
			if strings.Join(have, ";") != "ScheduleOSUpdate DownloadOnly key=MSU_UPDATE_23H417_patch_14.7.3_major" {
				t.Fatalf("notify sent %q", have)
			}
		})
	}
	t.Run("only a full installer", func(t *testing.T) {
		e := New(Config{})
		st := baseState("13.6")
		st.Target, st.MajorUpgrade = "14.7.3", true
		st.Step, st.StepCommand, st.Awaiting, st.StepAt = StepList, "CMD", "AvailableOSUpdates", now
		answer(t, e, st, mdm.Acknowledged, report(t, map[string]any{"AvailableOSUpdates": []any{minor, full}}), now)
		if st.ProductKey != "_MACOS_14.7.3" {
			t.Fatalf("product key = %q", st.ProductKey)
		}
		if have, _ := step(t, e, st, softwareupdate.PhaseNotify, now); len(have) != 0 {
			t.Fatalf("notify sent %q to a full installer (DownloadOnly is not valid for it)", have)
		}
		if have, _ := step(t, e, st, softwareupdate.PhaseEnforce, now); strings.Join(have, ";") != "ScheduleOSUpdate InstallASAP key=_MACOS_14.7.3" {
			t.Fatalf("enforce sent %q", have)
		}
	})
}

// Item 10: Start Now sends one InstallASAP per press, counted; when the
// install does not happen the press is used up and shown, and nothing is
// re-sent every 30 minutes. Presses are bounded by MaxStartNow. On main
// InstallASAP went out again after every verify, with attempts at 0.
func TestStartNowIsBounded(t *testing.T) {
	e := New(Config{})
	st := baseState("15.1")
	st.ProductKey, st.Downloaded, st.Step = "K", true, StepStatus
	press := func(at time.Time) { st.StartNowAt = at }
	var installs int
	var acts []scheduler.Action
	run := func(at time.Time) {
		t.Helper()
		have, act := step(t, e, st, softwareupdate.PhaseNotify, at)
		acts = append(acts, act)
		for _, c := range have {
			if strings.Contains(c, "InstallASAP") {
				installs++
			}
		}
		if st.Awaiting != "" {
			raw := updateResults(t, ActionInstallASAP, "Installing")
			if st.Awaiting == "DeviceInformation" {
				raw = report(t, map[string]any{"QueryResponses": map[string]any{"OSVersion": "15.1"}})
			} else if st.Awaiting == "OSUpdateStatus" {
				raw = report(t, map[string]any{"OSUpdateStatus": []any{map[string]any{"ProductKey": "K", "IsDownloaded": true, "Status": "Idle"}}})
			}
			answer(t, e, st, mdm.Acknowledged, raw, at)
		}
	}
	press(now)
	for m := 0; m <= 6*60; m += 30 { // six hours of passes every 30 minutes
		run(now.Add(time.Duration(m) * time.Minute))
	}
	if installs != 1 || st.Attempts != 1 || !st.StartNowAt.IsZero() {
		t.Fatalf("one press: %d InstallASAP sent, attempts %d, start now %v", installs, st.Attempts, st.StartNowAt)
	}
	if r := reasons(acts...); !strings.Contains(r, "Start Now: InstallASAP (install attempt 1 of 5)") || !strings.Contains(r, "Start Now did not install 15.2") {
		t.Errorf("history:\n%s", r)
	}
	later := now.Add(7 * time.Hour)
	press(later)
	run(later)
	press(later.Add(time.Hour))
	run(later.Add(time.Hour))
	for m := 0; m <= 120; m += 30 {
		run(later.Add(2*time.Hour + time.Duration(m)*time.Minute))
	}
	press(later.Add(5 * time.Hour))
	run(later.Add(5 * time.Hour))
	if installs != 2 || st.Attempts != 2 {
		t.Fatalf("after more presses: %d InstallASAP sent, attempts %d (MaxStartNow 2)", installs, st.Attempts)
	}
	if r := reasons(acts...); !strings.Contains(r, "Start Now not sent: 2 installs already sent before the deadline") {
		t.Errorf("history:\n%s", r)
	}
}

// Item 11: ScheduleOSUpdateScan only starts a scan; the list is asked once
// the scan had time to run, once more if the target is missing, and the
// history records when the list was taken. On main both went out in the
// same session and the list could predate the scan.
func TestScanThenListLater(t *testing.T) {
	e := New(Config{})
	st := baseState("11.7")
	st.Target = "11.7.10"
	st.Phase = softwareupdate.PhasePending
	if have, _ := step(t, e, st, softwareupdate.PhasePending, now); strings.Join(have, ";") != "ScheduleOSUpdateScan Force" {
		t.Fatalf("sent %q", have)
	}
	answer(t, e, st, mdm.Acknowledged, report(t, map[string]any{"ScanInitiated": true}), now.Add(time.Second))
	if have, _ := step(t, e, st, softwareupdate.PhasePending, now.Add(5*time.Minute)); len(have) != 0 {
		t.Fatalf("list asked while the scan runs: %q", have)
	}
	at := now.Add(10*time.Minute + time.Second)
	if have, _ := step(t, e, st, softwareupdate.PhasePending, at); strings.Join(have, ";") != "AvailableOSUpdates" {
		t.Fatalf("sent %q", have)
	}
	stale := report(t, map[string]any{"AvailableOSUpdates": []any{map[string]any{"ProductKey": "OLD", "Version": "11.7.9"}}})
	answer(t, e, st, mdm.Acknowledged, stale, at)
	if st.Failure != "" || st.Step != StepList || !st.NextCheck.Equal(at.Add(10*time.Minute)) {
		t.Fatalf("after a list without the target: %+v", st)
	}
	at2 := at.Add(10 * time.Minute)
	if have, _ := step(t, e, st, softwareupdate.PhasePending, at2); strings.Join(have, ";") != "AvailableOSUpdates" || st.Step != StepListAgain {
		t.Fatalf("second list: sent %q step %q", have, st.Step)
	}
	fresh := report(t, map[string]any{"AvailableOSUpdates": []any{map[string]any{"ProductKey": "KEY-11.7.10", "Version": "11.7.10"}}})
	ev := answer(t, e, st, mdm.Acknowledged, fresh, at2.Add(time.Minute))
	if st.ProductKey != "KEY-11.7.10" || len(ev) != 1 || !strings.Contains(ev[0].Reason, "list taken at "+at2.Add(time.Minute).Format(time.RFC3339)) {
		t.Fatalf("key %q events %+v", st.ProductKey, ev)
	}

	// Still missing after the second list: scan again after RescanEvery.
	st = baseState("11.7")
	st.Target, st.Phase = "11.7.10", softwareupdate.PhasePending
	st.Step, st.StepCommand, st.Awaiting, st.StepAt = StepListAgain, "CMD", "AvailableOSUpdates", now
	answer(t, e, st, mdm.Acknowledged, stale, now)
	if st.Step != "" || !st.NextCheck.Equal(now.Add(12*time.Hour)) {
		t.Fatalf("after the second miss: step %q next %v", st.Step, st.NextCheck)
	}
	if have, _ := step(t, e, st, softwareupdate.PhasePending, now.Add(12*time.Hour)); strings.Join(have, ";") != "ScheduleOSUpdateScan Force" {
		t.Fatalf("rescan sent %q", have)
	}
}

// A Start Now from the countdown that did not install is followed by the
// forced install itself, not by InstallASAP as if the Mac had substituted it.
func TestStartNowInCountdownThenForce(t *testing.T) {
	e := New(Config{})
	st := baseState("15.1")
	st.ProductKey, st.Downloaded, st.Step = "K", true, StepStatus
	st.StartNowAt = now
	if have, _ := step(t, e, st, softwareupdate.PhaseCountdown, now); strings.Join(have, ";") != "ScheduleOSUpdate InstallASAP key=K" {
		t.Fatalf("countdown sent %q", have)
	}
	answer(t, e, st, mdm.Acknowledged, updateResults(t, ActionInstallASAP, "Idle"), now)
	at := now.Add(30 * time.Minute)
	if have, _ := step(t, e, st, softwareupdate.PhaseEnforce, at); strings.Join(have, ";") != "DeviceInformation" {
		t.Fatalf("verify sent %q", have)
	}
	answer(t, e, st, mdm.Acknowledged, report(t, map[string]any{"QueryResponses": map[string]any{}}), at)
	have, act := step(t, e, st, softwareupdate.PhaseEnforce, at.Add(time.Hour))
	if strings.Join(have, ";") != "ScheduleOSUpdate InstallForceRestart key=K" || st.Attempts != 2 ||
		!strings.Contains(reasons(act), "Start Now did not install") || strings.Contains(reasons(act), "substituted") {
		t.Fatalf("after the Start Now: sent %q attempts %d reasons %q", have, st.Attempts, reasons(act))
	}
}
