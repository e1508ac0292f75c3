package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// TestDemoShort runs `sundial demo --short` and checks its final report:
// every supported Mac enrolled through ADE compliant (the scheduler makes
// an unsupervised Mac ineligible, so compliance through enforcement shows
// ADE supervised it), the profile-enrolled Mac ineligible (never failed),
// the unsupported one reported with its reason, the unmanaged group left
// alone; and the live lines: the Mac held at Setup Assistant and every
// phase.
func TestDemoShort(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo takes several seconds")
	}
	var out, errw bytes.Buffer
	cmd := newDemoCmd(func(string) string { return "" })
	cmd.SetArgs([]string{"--short", "--macs", "8", "-o", "json", "--timeout", "80s"})
	cmd.SetOut(&out)
	cmd.SetErr(&errw)
	cmd.SetContext(t.Context())
	start := time.Now()
	err := cmd.Execute()
	t.Logf("demo took %s; live output:\n%s", time.Since(start).Round(time.Millisecond), errw.String())
	if err != nil {
		t.Fatalf("demo: %v", err)
	}
	var rep scheduler.ComplianceReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("stdout is not a JSON report: %v\n%s", err, out.String())
	}
	if rep.Devices != 8 || len(rep.Rows) != 8 {
		t.Fatalf("report covers %d devices (%d rows), want 8", rep.Devices, len(rep.Rows))
	}
	byGroup := map[string]map[softwareupdate.Phase]int{}
	byName := map[string]scheduler.ReportRow{}
	for _, r := range rep.Rows {
		byName[r.DeviceName] = r
		if byGroup[r.GroupID] == nil {
			byGroup[r.GroupID] = map[softwareupdate.Phase]int{}
		}
		byGroup[r.GroupID][r.Phase]++
		switch {
		case r.GroupID == demoUnmanaged:
			if r.Phase != softwareupdate.PhaseUnmanaged {
				t.Errorf("%s in the unmanaged group is %s", r.DeviceID, r.Phase)
			}
		case r.DeviceName == "mac-03":
			// Enrolled with the downloaded profile: not supervised, so
			// ineligible, below its target and not past any deadline.
			if r.Phase != softwareupdate.PhaseIneligible || r.GroupID != demoAutomatic ||
				!strings.Contains(r.Reason, "not supervised") || r.OSVersion == r.Target || r.PastDeadline {
				t.Errorf("profile-enrolled row = %+v", r)
			}
		case r.Phase == softwareupdate.PhaseUnsupported:
			if r.GroupID != demoManual || !strings.Contains(r.Reason, "not supported") || r.Target == "" {
				t.Errorf("unsupported row = %+v", r)
			}
		case r.Phase != softwareupdate.PhaseCompliant:
			t.Errorf("%s (%s, %s) ended %s: %s", r.DeviceID, r.GroupID, r.OSVersion, r.Phase, r.Reason)
		}
	}
	if n := rep.ByPhase[softwareupdate.PhaseFailed]; n != 0 {
		t.Errorf("%d Macs failed, want none", n)
	}
	if len(rep.Ineligible) != 1 || rep.Ineligible[0].DeviceID != byName["mac-03"].DeviceID {
		t.Errorf("ineligible = %+v, want only the profile-enrolled mac-03", rep.Ineligible)
	}
	// The manual group's macOS 15 Mac installed its target at Setup
	// Assistant, so it enrolled compliant; its macOS 13 Mac (too old to be
	// held) enrolled and was upgraded by the scheduler.
	if r := byName["mac-02"]; r.Phase != softwareupdate.PhaseCompliant || r.OSVersion != r.Target || r.GroupID != demoManual {
		t.Errorf("held Mac row = %+v", r)
	}
	if r := byName["mac-06"]; r.Phase != softwareupdate.PhaseCompliant || !strings.HasPrefix(r.OSVersion, "15.") || r.GroupID != demoManual {
		t.Errorf("macOS 13 manual-group Mac row = %+v", r)
	}
	for _, want := range []string{"mac-02 (ADE) was held at Setup Assistant on macOS 15.",
		"mac-03 enrolled with the downloaded profile: not supervised, so ineligible"} {
		if !strings.Contains(errw.String(), want) {
			t.Errorf("live output lacks %q", want)
		}
	}
	if len(rep.Unsupported) != 1 || rep.Unsupported[0].Reason == "" {
		t.Errorf("unsupported = %+v, want one Mac with its reason", rep.Unsupported)
	}
	if byGroup[demoAutomatic][softwareupdate.PhaseCompliant] < 2 || byGroup[demoManual][softwareupdate.PhaseCompliant] < 1 {
		t.Errorf("compliant per group = %v", byGroup)
	}
	// No Mac misses its deadline: the ineligible one is shown as such.
	if len(rep.PastDeadline) != 0 {
		t.Errorf("past deadline = %+v, want none", rep.PastDeadline)
	}
	// The history measured how long the Macs took.
	reached := 0
	for _, tc := range rep.TimeToCompliance {
		reached += tc.Reached
		if tc.Reached > 0 && (tc.MedianSeconds <= 0 || tc.P90Seconds < tc.MedianSeconds) {
			t.Errorf("time to compliance %+v", tc)
		}
	}
	if reached < 2 {
		t.Errorf("time to compliance reached %d episodes, want every updated Mac: %+v", reached, rep.TimeToCompliance)
	}
	// The live summary shows every phase a Mac passes through, sampled
	// often enough to catch the 30-minute countdown.
	live := errw.String()
	if !strings.Contains(live, "COMPLIANT") || strings.Count(live, "\n") < 8 {
		t.Errorf("live summary missing:\n%s", live)
	}
	seen := make([]int, 10) // the most Macs shown in each column
	for line := range strings.Lines(live) {
		f := strings.Fields(line)
		if len(f) != 5+len(seen) || f[0] < "0" || f[0] > "9" {
			continue
		}
		for i, v := range f[5:] {
			n, _ := strconv.Atoi(v)
			seen[i] = max(seen[i], n)
		}
	}
	for i, ph := range []string{"PENDING", "NOTIFY", "COUNTDOWN", "ENFORCE", "COMPLIANT", "INELIGIBLE", "UNSUPPORTED", "UNMANAGED"} {
		if col := []int{1, 2, 3, 4, 6, 7, 8, 9}[i]; seen[col] == 0 {
			t.Errorf("the summary never showed a Mac in %s: %v", ph, seen)
		}
	}
	for _, ph := range []softwareupdate.Phase{softwareupdate.PhaseNotify, softwareupdate.PhaseCountdown,
		softwareupdate.PhaseEnforce, softwareupdate.PhaseCompliant} {
		if !strings.Contains(live, "→ "+string(ph)) {
			t.Errorf("no named Mac was shown entering %s", ph)
		}
	}
	// One story per path, each ending where it should. Alternatives are
	// separated by " | ": macOS installs a declaration by itself at its
	// TargetLocalDateTime, the moment the server's enforce phase begins,
	// so the server may see the declarative Mac compliant from countdown.
	for _, want := range []string{
		"mac-01 (legacy ScheduleOSUpdate): enforce → compliant",
		"mac-05 (declarative): enforce → compliant | mac-05 (declarative): countdown → compliant",
		"mac-06 (legacy major upgrade: macOS 13 is too old to hold at setup): enrolled → pending",
		"mac-06 (legacy major upgrade: macOS 13 is too old to hold at setup): enforce → compliant",
		"mac-03 (profile-enrolled, not supervised): enrolled → ineligible  ineligible: not supervised",
		"mac-07: the user chooses Start Now",
		"mac-07 (legacy, the user chooses Start Now): notify → compliant",
		"mac-08 (unsupported model): enrolled → unsupported",
		"mac-04 (unmanaged): enrolled → unmanaged",
	} {
		if !slices.ContainsFunc(strings.Split(want, " | "), func(w string) bool { return strings.Contains(live, w) }) {
			t.Errorf("live output lacks %q", want)
		}
	}
}

func TestDemoFlags(t *testing.T) {
	for _, args := range [][]string{{"--macs", "2"}, {"--speed", "1m"}, {"-o", "yaml"}} {
		cmd := newDemoCmd(func(string) string { return "" })
		cmd.SetArgs(args)
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		err := cmd.Execute()
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("demo %v = %v, want a usage error", args, err)
		}
	}
}
