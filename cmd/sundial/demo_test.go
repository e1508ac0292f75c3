package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// TestDemoShort runs `sundial demo --short` and checks its final report:
// every supported managed Mac compliant, the unsupported one reported with
// its reason, the unmanaged group left alone.
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
	failed := 0
	for _, r := range rep.Rows {
		if byGroup[r.GroupID] == nil {
			byGroup[r.GroupID] = map[softwareupdate.Phase]int{}
		}
		byGroup[r.GroupID][r.Phase]++
		switch {
		case r.GroupID == demoUnmanaged:
			if r.Phase != softwareupdate.PhaseUnmanaged {
				t.Errorf("%s in the unmanaged group is %s", r.DeviceID, r.Phase)
			}
		case r.Phase == softwareupdate.PhaseFailed:
			// The Mac enrolled with the downloaded profile: not supervised.
			if r.GroupID != demoAutomatic || !strings.Contains(r.Reason, "not supervised") {
				t.Errorf("failed row = %+v", r)
			}
			failed++
		case r.Phase == softwareupdate.PhaseUnsupported:
			if r.GroupID != demoManual || !strings.Contains(r.Reason, "not supported") || r.Target == "" {
				t.Errorf("unsupported row = %+v", r)
			}
		case r.Phase != softwareupdate.PhaseCompliant:
			t.Errorf("%s (%s, %s) ended %s: %s", r.DeviceID, r.GroupID, r.OSVersion, r.Phase, r.Reason)
		}
	}
	if failed != 1 {
		t.Errorf("%d Macs failed, want the one enrolled with the downloaded profile", failed)
	}
	if !strings.Contains(errw.String(), "held at Setup Assistant") || !strings.Contains(errw.String(), "not supervised, so ineligible") {
		t.Errorf("live output does not show the ADE Mac held at Setup Assistant and the profile-enrolled one:\n%s", errw.String())
	}
	if len(rep.Unsupported) != 1 || rep.Unsupported[0].Reason == "" {
		t.Errorf("unsupported = %+v, want one Mac with its reason", rep.Unsupported)
	}
	if byGroup[demoAutomatic][softwareupdate.PhaseCompliant] < 2 || byGroup[demoManual][softwareupdate.PhaseCompliant] < 1 {
		t.Errorf("compliant per group = %v", byGroup)
	}
	// Only the unsupervised Mac misses its deadline: nothing can enforce it.
	if len(rep.PastDeadline) != 1 || rep.PastDeadline[0].Phase != softwareupdate.PhaseFailed {
		t.Errorf("past deadline = %+v, want only the profile-enrolled Mac", rep.PastDeadline)
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
	seen := make([]int, 9) // the most Macs shown in each column
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
	for i, ph := range []string{"PENDING", "NOTIFY", "COUNTDOWN", "ENFORCE", "COMPLIANT"} {
		if col := []int{1, 2, 3, 4, 6}[i]; seen[col] == 0 {
			t.Errorf("the summary never showed a Mac in %s: %v", ph, seen)
		}
	}
	for _, ph := range []softwareupdate.Phase{softwareupdate.PhaseNotify, softwareupdate.PhaseCountdown,
		softwareupdate.PhaseEnforce, softwareupdate.PhaseCompliant} {
		if !strings.Contains(live, "→ "+string(ph)) {
			t.Errorf("no named Mac was shown entering %s", ph)
		}
	}
	// One story per path, each ending where it should.
	for _, want := range []string{
		"mac-01 (legacy ScheduleOSUpdate): enforce → compliant",
		"mac-03 (declarative): enforce → compliant",
		"mac-07: the user chooses Start Now",
		"mac-07 (legacy, the user chooses Start Now): notify → compliant",
		"mac-08 (unsupported model): enrolled → unsupported",
		"mac-04 (unmanaged): enrolled → unmanaged",
	} {
		if !strings.Contains(live, want) {
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
