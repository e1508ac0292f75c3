package legacy

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/micromdm/plist"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

var now = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func baseState(os string) *scheduler.State {
	return &scheduler.State{
		DeviceID: "MAC", Path: softwareupdate.PathLegacy, Target: "15.2",
		Facts: scheduler.Facts{OSVersion: os, Supervised: true, Enabled: true, InventoryAt: now},
	}
}

func input(ph softwareupdate.Phase) scheduler.Input {
	return scheduler.Input{Decision: softwareupdate.Decision{Phase: ph}, Now: now,
		Target: softwareupdate.Target{Status: softwareupdate.StatusRequired, Version: catalog.MustParseVersion("15.2")}}
}

// describe summarises commands as "RequestType[ InstallAction[/Priority] key|version]".
func describe(t *testing.T, cmds []*mdm.Command) []string {
	t.Helper()
	var out []string
	for _, c := range cmds {
		var v struct {
			Command struct {
				Force   bool
				Updates []map[string]string
			}
		}
		if err := plist.Unmarshal(c.Raw, &v); err != nil {
			t.Fatal(err)
		}
		s := c.RequestType
		for _, u := range v.Command.Updates {
			s += " " + u["InstallAction"]
			if u["Priority"] != "" {
				s += "/" + u["Priority"]
			}
			if u["ProductKey"] != "" {
				s += " key=" + u["ProductKey"]
			} else {
				s += " version=" + u["ProductVersion"]
			}
		}
		if v.Command.Force {
			s += " Force"
		}
		out = append(out, s)
	}
	return out
}

func TestStep(t *testing.T) {
	tests := []struct {
		name  string
		phase softwareupdate.Phase
		setup func(st *scheduler.State)
		want  []string
		step  string
	}{
		{"pending scans", softwareupdate.PhasePending, nil,
			[]string{"ScheduleOSUpdateScan Force"}, StepScan},
		{"pending lists once the scan had time to run", softwareupdate.PhasePending, func(st *scheduler.State) { st.Step = StepScan; st.NextCheck = now },
			[]string{"AvailableOSUpdates"}, StepList},
		{"pending waits while the scan runs", softwareupdate.PhasePending, func(st *scheduler.State) { st.Step = StepScan; st.NextCheck = now.Add(time.Minute) },
			nil, StepScan},
		{"pending with a key waits", softwareupdate.PhasePending, func(st *scheduler.State) { st.ProductKey = "K" }, nil, ""},
		{"notify downloads by key with high priority", softwareupdate.PhaseNotify, func(st *scheduler.State) { st.ProductKey = "K"; st.Step = StepScan },
			[]string{"ScheduleOSUpdate DownloadOnly/High key=K"}, StepDownload},
		{"notify on 12.2 has no priority", softwareupdate.PhaseNotify, func(st *scheduler.State) { st.Facts.OSVersion = "12.2"; st.Target = "12.7" },
			[]string{"ScheduleOSUpdate DownloadOnly version=12.7"}, StepDownload},
		{"notify on macOS 11 without a key scans first", softwareupdate.PhaseNotify, func(st *scheduler.State) { st.Facts.OSVersion = "11.7"; st.Target = "11.7.10" },
			[]string{"ScheduleOSUpdateScan Force"}, StepScan},
		{"major download has no priority", softwareupdate.PhaseNotify, func(st *scheduler.State) { st.MajorUpgrade = true; st.Facts.OSVersion = "14.6" },
			[]string{"ScheduleOSUpdate DownloadOnly version=15.2"}, StepDownload},
		{"notify polls after the download was acknowledged", softwareupdate.PhaseNotify, func(st *scheduler.State) { st.Step = StepDownload; st.NextCheck = now },
			[]string{"OSUpdateStatus"}, StepStatus},
		{"notify waits for an outstanding result", softwareupdate.PhaseNotify, func(st *scheduler.State) { st.Step = StepDownload; st.Awaiting = "ScheduleOSUpdate" }, nil, StepDownload},
		{"downloaded: quiet", softwareupdate.PhaseCountdown, func(st *scheduler.State) { st.Step = StepStatus; st.Downloaded = true }, nil, StepStatus},
		{"countdown without Start Now sends nothing", softwareupdate.PhaseCountdown, func(st *scheduler.State) { st.Step = StepStatus; st.Downloaded = true; st.ProductKey = "K" }, nil, StepStatus},
		{"Start Now installs ASAP", softwareupdate.PhaseCountdown, func(st *scheduler.State) { st.Downloaded = true; st.ProductKey = "K"; st.StartNowAt = now },
			[]string{"ScheduleOSUpdate InstallASAP key=K"}, StepInstallASAP},
		{"enforce forces the restart", softwareupdate.PhaseEnforce, func(st *scheduler.State) { st.ProductKey = "K"; st.Step = StepStatus },
			[]string{"ScheduleOSUpdate InstallForceRestart key=K"}, StepForce},
		{"enforce of a major upgrade uses InstallASAP", softwareupdate.PhaseEnforce, func(st *scheduler.State) { st.MajorUpgrade = true },
			[]string{"ScheduleOSUpdate InstallASAP version=15.2"}, StepForce},
		{"enforce verifies after an acknowledged install", softwareupdate.PhaseEnforce, func(st *scheduler.State) { st.Step = StepForce; st.NextCheck = now },
			[]string{"DeviceInformation"}, StepVerify},
		{"enforce re-sends after a verify that found the old version", softwareupdate.PhaseEnforce, func(st *scheduler.State) {
			st.Step = StepVerify
			st.NextCheck = now
			st.Attempts = 1
			st.InstallAction = ActionInstallForceRestart
		}, []string{"ScheduleOSUpdate InstallForceRestart version=15.2"}, StepForce},
		{"enforce after a substituted action uses InstallASAP", softwareupdate.PhaseEnforce, func(st *scheduler.State) {
			st.Step = StepVerify
			st.NextCheck = now
			st.Attempts = 1
			st.InstallAction = ActionInstallASAP
		}, []string{"ScheduleOSUpdate InstallASAP version=15.2"}, StepForce},
		{"enforce gives up after MaxAttempts", softwareupdate.PhaseEnforce, func(st *scheduler.State) { st.Step = StepVerify; st.NextCheck = now; st.Attempts = 5 }, nil, StepGaveUp},
		{"a daily retry after giving up sends one more", softwareupdate.PhaseEnforce, func(st *scheduler.State) { st.Step = StepGaveUp; st.Attempts = 5 },
			[]string{"ScheduleOSUpdate InstallForceRestart version=15.2"}, StepForce},
		{"declarative path: never a legacy command", softwareupdate.PhaseEnforce, func(st *scheduler.State) { st.Path = softwareupdate.PathDeclarative }, nil, ""},
		{"unsupervised: a failure, no command", softwareupdate.PhaseNotify, func(st *scheduler.State) { st.Facts.Supervised = false }, nil, ""},
		{"compliant: nothing", softwareupdate.PhaseCompliant, nil, nil, ""},
		{"failed: nothing", softwareupdate.PhaseFailed, func(st *scheduler.State) { st.Step = StepDownload }, nil, StepDownload},
	}
	e := New(Config{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := baseState("15.1")
			if tc.setup != nil {
				tc.setup(st)
			}
			act, err := e.Step(t.Context(), st, input(tc.phase))
			if err != nil {
				t.Fatal(err)
			}
			have := describe(t, act.Commands)
			if strings.Join(have, "; ") != strings.Join(tc.want, "; ") {
				t.Errorf("commands = %q, want %q", have, tc.want)
			}
			if st.Step != tc.step {
				t.Errorf("step = %q, want %q", st.Step, tc.step)
			}
			if len(act.Commands) > 0 {
				last := act.Commands[len(act.Commands)-1]
				if st.StepCommand != last.UUID || st.Awaiting != last.RequestType || !st.StepAt.Equal(now) || len(act.Events) != 1 {
					t.Errorf("step not recorded: %+v, events %+v", st, act.Events)
				}
			}
		})
	}
}

func TestStepUnsupervisedSurfacesFailure(t *testing.T) {
	st := baseState("15.1")
	st.Facts.Supervised = false
	if _, err := New(Config{}).Step(t.Context(), st, input(softwareupdate.PhaseNotify)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(st.Failure, "supervised") || st.RetryAt.IsZero() {
		t.Errorf("failure = %q retry %v", st.Failure, st.RetryAt)
	}
}

func report(t *testing.T, fields map[string]any) []byte {
	t.Helper()
	fields["Status"] = "Acknowledged"
	fields["UDID"] = "MAC"
	b, err := plist.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func updateResults(t *testing.T, action, status string) []byte {
	return report(t, map[string]any{"UpdateResults": []any{map[string]any{"ProductKey": "K", "InstallAction": action, "Status": status}}})
}

// TestScheduleOSUpdateStatuses: every UpdateResults status Apple documents
// either means progress or becomes a surfaced failure with its name.
func TestScheduleOSUpdateStatuses(t *testing.T) {
	tests := []struct {
		status  string
		failure bool
	}{
		{"Idle", false}, {"Downloading", false}, {"Installing", false},
		{"DownloadFailed", true}, {"DownloadRequiresComputer", true}, {"DownloadInsufficientSpace", true},
		{"DownloadInsufficientPower", true}, {"DownloadInsufficientNetwork", true},
		{"InstallInsufficientSpace", true}, {"InstallInsufficientPower", true},
		{"InstallPhoneCallInProgress", true}, {"InstallFailed", true}, {"SomethingNew", true},
	}
	e := New(Config{})
	for _, tc := range tests {
		t.Run(tc.status, func(t *testing.T) {
			st := baseState("15.1")
			st.Step, st.StepCommand, st.Awaiting = StepDownload, "CMD", "ScheduleOSUpdate"
			_, err := e.HandleResult(t.Context(), st, scheduler.Result{RequestType: "ScheduleOSUpdate", CommandUUID: "CMD", Status: mdm.Acknowledged,
				Raw: updateResults(t, ActionDownloadOnly, tc.status)}, now)
			if err != nil {
				t.Fatal(err)
			}
			if have := st.Failure != ""; have != tc.failure {
				t.Fatalf("failure = %q, want failure %v", st.Failure, tc.failure)
			}
			if tc.failure {
				if !strings.Contains(st.Failure, tc.status) || !st.RetryAt.Equal(now.Add(time.Hour)) || st.Step != "" || st.Awaiting != "" {
					t.Errorf("state after %s = failure %q retry %v step %q awaiting %q", tc.status, st.Failure, st.RetryAt, st.Step, st.Awaiting)
				}
				return
			}
			if st.Awaiting != "" || !st.NextCheck.Equal(now.Add(time.Hour)) || st.ProductKey != "K" {
				t.Errorf("progress state = %+v", st)
			}
		})
	}
}

func TestHandleResult(t *testing.T) {
	e := New(Config{})
	notAvailable := report(t, map[string]any{"UpdateResults": []any{map[string]any{"ProductKey": "15.2", "InstallAction": "Error", "Status": "Idle",
		"ErrorChain": []any{map[string]any{"ErrorCode": 7, "ErrorDomain": "SUMacControllerError", "LocalizedDescription": "The requested update is not available"}}}}})
	tests := []struct {
		name  string
		setup func(st *scheduler.State)
		res   scheduler.Result
		check func(t *testing.T, st *scheduler.State, ev []scheduler.Transition)
	}{
		{"available updates give the product key", func(st *scheduler.State) {
			st.Step, st.StepCommand, st.Awaiting = StepScan, "CMD", "AvailableOSUpdates"
		},
			scheduler.Result{RequestType: "AvailableOSUpdates", CommandUUID: "CMD", Status: mdm.Acknowledged, Raw: report(t, map[string]any{"AvailableOSUpdates": []any{
				map[string]any{"ProductKey": "RSR", "Version": "15.2", "SupplementalOSVersionExtra": "(a)"},
				map[string]any{"ProductKey": "MSU_UPDATE_24C101_patch_15.2_minor", "Version": "15.2"},
				map[string]any{"ProductKey": "MAJOR", "Version": "26.1"},
			}})},
			func(t *testing.T, st *scheduler.State, ev []scheduler.Transition) {
				if st.ProductKey != "MSU_UPDATE_24C101_patch_15.2_minor" || st.Awaiting != "" || st.Step != StepScan {
					t.Errorf("state = %+v", st)
				}
			}},
		{"target not offered: rescan later", func(st *scheduler.State) {
			st.Step, st.StepCommand, st.Awaiting = StepScan, "CMD", "AvailableOSUpdates"
		},
			scheduler.Result{RequestType: "AvailableOSUpdates", CommandUUID: "CMD", Status: mdm.Acknowledged, Raw: report(t, map[string]any{"AvailableOSUpdates": []any{}})},
			func(t *testing.T, st *scheduler.State, ev []scheduler.Transition) {
				if st.ProductKey != "" || st.Step != "" || !st.NextCheck.Equal(now.Add(12*time.Hour)) || st.Failure != "" {
					t.Errorf("state = %+v", st)
				}
			}},
		{"target still not offered in notify: surfaced", func(st *scheduler.State) {
			st.Phase = softwareupdate.PhaseNotify
			st.Step, st.StepCommand, st.Awaiting = StepScan, "CMD", "AvailableOSUpdates"
		},
			scheduler.Result{RequestType: "AvailableOSUpdates", CommandUUID: "CMD", Status: mdm.Acknowledged, Raw: report(t, map[string]any{"AvailableOSUpdates": []any{}})},
			func(t *testing.T, st *scheduler.State, ev []scheduler.Transition) {
				if !strings.Contains(st.Failure, "no update available") || !st.RetryAt.Equal(now.Add(12*time.Hour)) {
					t.Errorf("state = %+v", st)
				}
			}},
		{"NotNow leaves the step outstanding", func(st *scheduler.State) { st.Step, st.StepCommand, st.Awaiting = StepForce, "CMD", "ScheduleOSUpdate" },
			scheduler.Result{RequestType: "ScheduleOSUpdate", CommandUUID: "CMD", Status: mdm.NotNow},
			func(t *testing.T, st *scheduler.State, ev []scheduler.Transition) {
				if st.Awaiting != "ScheduleOSUpdate" || st.Failure != "" || len(ev) != 1 || !strings.Contains(ev[0].Reason, "NotNow") {
					t.Errorf("state = %+v events %+v", st, ev)
				}
			}},
		{"an Error report is a failure with its chain", func(st *scheduler.State) {
			st.Step, st.StepCommand, st.Awaiting = StepDownload, "CMD", "ScheduleOSUpdate"
		},
			scheduler.Result{RequestType: "ScheduleOSUpdate", CommandUUID: "CMD", Status: mdm.Error, ErrorChain: []mdm.ErrorChainItem{{ErrorCode: 12070, ErrorDomain: "MCMDMErrorDomain", USEnglishDescription: "This command requires a supervised device"}}},
			func(t *testing.T, st *scheduler.State, ev []scheduler.Transition) {
				if !strings.Contains(st.Failure, "12070") || !strings.Contains(st.Failure, "supervised") || st.Attempts != 0 || st.Errors != 1 {
					t.Errorf("state = %+v", st)
				}
			}},
		{"update not available: failure and rescan", func(st *scheduler.State) {
			st.Step, st.StepCommand, st.Awaiting, st.ProductKey = StepDownload, "CMD", "ScheduleOSUpdate", "K"
		},
			scheduler.Result{RequestType: "ScheduleOSUpdate", CommandUUID: "CMD", Status: mdm.Acknowledged, Raw: notAvailable},
			func(t *testing.T, st *scheduler.State, ev []scheduler.Transition) {
				if !strings.Contains(st.Failure, "not available") || st.ProductKey != "" {
					t.Errorf("state = %+v", st)
				}
			}},
		{"substituted InstallAction is noted; next attempt installs ASAP", func(st *scheduler.State) {
			st.Step, st.StepCommand, st.Awaiting, st.InstallAction = StepForce, "CMD", "ScheduleOSUpdate", ActionInstallForceRestart
		},
			scheduler.Result{RequestType: "ScheduleOSUpdate", CommandUUID: "CMD", Status: mdm.Acknowledged, Raw: updateResults(t, ActionDownloadOnly, "Downloading")},
			func(t *testing.T, st *scheduler.State, ev []scheduler.Transition) {
				if st.InstallAction != ActionInstallASAP || len(ev) != 1 || !strings.Contains(ev[0].Reason, "substituted DownloadOnly for InstallForceRestart") ||
					!st.NextCheck.Equal(now.Add(30*time.Minute)) {
					t.Errorf("state = %+v events %+v", st, ev)
				}
			}},
		{"a stale result teaches the key but keeps the step", func(st *scheduler.State) { st.Step, st.StepCommand, st.Awaiting = StepForce, "NEW", "ScheduleOSUpdate" },
			scheduler.Result{RequestType: "ScheduleOSUpdate", CommandUUID: "OLD", Status: mdm.Acknowledged, Raw: updateResults(t, ActionDownloadOnly, "DownloadInsufficientSpace")},
			func(t *testing.T, st *scheduler.State, ev []scheduler.Transition) {
				if st.Awaiting != "ScheduleOSUpdate" || st.Failure != "" || st.ProductKey != "K" {
					t.Errorf("state = %+v", st)
				}
			}},
		{"status: downloaded", func(st *scheduler.State) {
			st.Step, st.StepCommand, st.Awaiting, st.ProductKey = StepStatus, "CMD", "OSUpdateStatus", "K"
		},
			scheduler.Result{RequestType: "OSUpdateStatus", CommandUUID: "CMD", Status: mdm.Acknowledged, Raw: report(t, map[string]any{"OSUpdateStatus": []any{
				map[string]any{"ProductKey": "K", "IsDownloaded": true, "DownloadPercentComplete": 1.0, "Status": "Idle"}}})},
			func(t *testing.T, st *scheduler.State, ev []scheduler.Transition) {
				if !st.Downloaded || !st.NextCheck.IsZero() {
					t.Errorf("state = %+v", st)
				}
			}},
		{"status: still downloading polls again", func(st *scheduler.State) {
			st.Step, st.StepCommand, st.Awaiting, st.ProductKey = StepStatus, "CMD", "OSUpdateStatus", "K"
		},
			scheduler.Result{RequestType: "OSUpdateStatus", CommandUUID: "CMD", Status: mdm.Acknowledged, Raw: report(t, map[string]any{"OSUpdateStatus": []any{
				map[string]any{"ProductKey": "K", "IsDownloaded": false, "DownloadPercentComplete": 0.4, "Status": "Downloading"}}})},
			func(t *testing.T, st *scheduler.State, ev []scheduler.Transition) {
				if st.Downloaded || !st.NextCheck.Equal(now.Add(time.Hour)) || !strings.Contains(ev[0].Reason, "40%") {
					t.Errorf("state = %+v, events %+v", st, ev)
				}
			}},
		{"status: download vanished, download again", func(st *scheduler.State) {
			st.Step, st.StepCommand, st.Awaiting, st.ProductKey = StepStatus, "CMD", "OSUpdateStatus", "K"
		},
			scheduler.Result{RequestType: "OSUpdateStatus", CommandUUID: "CMD", Status: mdm.Acknowledged, Raw: report(t, map[string]any{"OSUpdateStatus": []any{}})},
			func(t *testing.T, st *scheduler.State, ev []scheduler.Transition) {
				if st.Step != "" || st.Attempts != 0 || st.Errors != 1 {
					t.Errorf("state = %+v", st)
				}
			}},
		{"verify result schedules the next attempt with backoff", func(st *scheduler.State) {
			st.Step, st.StepCommand, st.Awaiting, st.Attempts = StepVerify, "CMD", "DeviceInformation", 3
		},
			scheduler.Result{RequestType: "DeviceInformation", CommandUUID: "CMD", Status: mdm.Acknowledged, Raw: report(t, map[string]any{"QueryResponses": map[string]any{}})},
			func(t *testing.T, st *scheduler.State, ev []scheduler.Transition) {
				if st.Awaiting != "" || !st.NextCheck.Equal(now.Add(4*time.Hour)) {
					t.Errorf("state = %+v", st)
				}
			}},
		{"declarative path ignores results", func(st *scheduler.State) {
			st.Path = softwareupdate.PathDeclarative
			st.Step, st.StepCommand, st.Awaiting = StepDownload, "CMD", "ScheduleOSUpdate"
		},
			scheduler.Result{RequestType: "ScheduleOSUpdate", CommandUUID: "CMD", Status: mdm.Acknowledged, Raw: updateResults(t, ActionDownloadOnly, "InstallFailed")},
			func(t *testing.T, st *scheduler.State, ev []scheduler.Transition) {
				if st.Failure != "" || st.Awaiting == "" {
					t.Errorf("state = %+v", st)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := baseState("15.1")
			tc.setup(st)
			ev, err := e.HandleResult(t.Context(), st, tc.res, now)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, st, ev)
		})
	}
}

func TestFailureBackoffIsBounded(t *testing.T) {
	e := New(Config{RetryBase: time.Hour, RetryMax: 6 * time.Hour, MaxAttempts: 5})
	st := baseState("15.1")
	var retries []string
	for range 5 {
		st.Step, st.StepCommand, st.Awaiting = StepDownload, "CMD", "ScheduleOSUpdate"
		if _, err := e.HandleResult(t.Context(), st, scheduler.Result{RequestType: "ScheduleOSUpdate", CommandUUID: "CMD", Status: mdm.Acknowledged,
			Raw: updateResults(t, ActionDownloadOnly, "DownloadFailed")}, now); err != nil {
			t.Fatal(err)
		}
		retries = append(retries, st.RetryAt.Sub(now).String())
	}
	// Without a deadline a step that keeps failing is retried at RetryMax,
	// never abandoned.
	if have, want := strings.Join(retries, " "), "1h0m0s 2h0m0s 4h0m0s 6h0m0s 6h0m0s"; have != want {
		t.Errorf("retries = %s, want %s", have, want)
	}
	if !strings.Contains(st.Failure, "DownloadFailed") {
		t.Errorf("failure = %q", st.Failure)
	}
}

func TestDecodeFixtures(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	av, err := DecodeAvailableOSUpdates(read("AvailableOSUpdates.response.Acknowledged.plist"))
	if err != nil || len(av) != 1 || av[0].ProductKey != "iOSUpdate17A576" || av[0].Version != "13.0" {
		t.Errorf("AvailableOSUpdates = %+v, %v", av, err)
	}
	ur, err := DecodeUpdateResults(read("ScheduleOSUpdate.response.Acknowledged.plist"))
	if err != nil || len(ur) != 1 || ur[0].InstallAction != "DownloadOnly" || ur[0].Status != "Downloading" {
		t.Errorf("UpdateResults = %+v, %v", ur, err)
	}
	us, err := DecodeOSUpdateStatus(read("OSUpdateStatus.response.Acknowledged.plist"))
	if err != nil || len(us) != 1 || us[0].IsDownloaded || us[0].DownloadPercentComplete < 0.5 || us[0].DownloadPercentComplete > 0.51 {
		t.Errorf("OSUpdateStatus = %+v, %v", us, err)
	}
	for _, bad := range [][]byte{nil, []byte("bplist00"), []byte("<plist><dict><key>UpdateResults</key><string>x</string></dict></plist>")} {
		if _, err := DecodeUpdateResults(bad); err == nil {
			t.Errorf("DecodeUpdateResults(%q) accepted", bad)
		}
	}
}

func FuzzDecodeResults(f *testing.F) {
	for _, name := range []string{"AvailableOSUpdates.response.Acknowledged.plist", "ScheduleOSUpdate.response.Acknowledged.plist",
		"OSUpdateStatus.response.Acknowledged.plist", "ScheduleOSUpdateScan.response.Acknowledged.macos.plist"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, _ = DecodeAvailableOSUpdates(raw)
		_, _ = DecodeUpdateResults(raw)
		_, _ = DecodeOSUpdateStatus(raw)
		// HandleResult must never panic on device input, whatever the type.
		e := New(Config{})
		for _, rt := range e.RequestTypes() {
			st := baseState("15.1")
			st.Step, st.StepCommand, st.Awaiting = StepDownload, "CMD", rt
			if _, err := e.HandleResult(t.Context(), st, scheduler.Result{RequestType: rt, CommandUUID: "CMD", Status: mdm.Acknowledged, Raw: raw}, now); err != nil {
				t.Fatal(fmt.Errorf("%s: %w", rt, err))
			}
		}
	})
}
