package scheduler_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

var reportNow = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func reportDevice(id, os string) *mdm.Device {
	return &mdm.Device{ID: id, Enabled: true, Inventory: mdm.Inventory{OSVersion: os, SerialNumber: "SN" + id}}
}

func phaseAt(at time.Time, from, to softwareupdate.Phase, target string) scheduler.Transition {
	return scheduler.Transition{At: at, Kind: scheduler.EventPhase, From: from, To: to, Target: target}
}

func TestBuildComplianceReport(t *testing.T) {
	h := func(n int) time.Time { return reportNow.Add(time.Duration(n) * time.Hour) }
	in := []scheduler.ReportInput{
		{Device: reportDevice("a", "15.2"), GroupID: "default", State: &scheduler.State{Phase: softwareupdate.PhaseCompliant, Target: "15.2", Facts: scheduler.Facts{OSVersion: "15.2"}},
			History: []scheduler.Transition{phaseAt(h(-100), "", "pending", "15.2"), phaseAt(h(-50), "pending", "notify", "15.2"), phaseAt(h(-40), "notify", "compliant", "15.2")}},
		{Device: reportDevice("b", "15.2"), GroupID: "default", State: &scheduler.State{Phase: softwareupdate.PhaseCompliant, Target: "15.2", Facts: scheduler.Facts{OSVersion: "15.2"}},
			History: []scheduler.Transition{phaseAt(h(-30), "", "notify", "15.2"), phaseAt(h(-20), "notify", "compliant", "15.2")}},
		{Device: reportDevice("c", "15.1"), GroupID: "default", State: &scheduler.State{Phase: softwareupdate.PhaseEnforce, Target: "15.2", Deadline: h(-2), Facts: scheduler.Facts{OSVersion: "15.1"}}},
		{Device: reportDevice("d", "15.1"), GroupID: "ring", State: &scheduler.State{Phase: softwareupdate.PhaseFailed, Target: "15.2", Deadline: h(30), Failure: "DownloadInsufficientSpace", Facts: scheduler.Facts{OSVersion: "15.1"}}},
		{Device: reportDevice("e", "15.1"), GroupID: "ring", State: &scheduler.State{Phase: softwareupdate.PhasePending, Target: "15.2", Deadline: h(24 * 10), Facts: scheduler.Facts{OSVersion: "15.1"}}},
		{Device: reportDevice("f", "13.6"), GroupID: "ring", State: &scheduler.State{Phase: softwareupdate.PhaseUnsupported, Reason: "board X is not supported by macOS 15.2", Target: "15.2", Facts: scheduler.Facts{OSVersion: "13.6"}}},
		{Device: reportDevice("g", ""), GroupID: "default"},
		{Device: &mdm.Device{ID: "h", Enabled: true}, GroupID: "default", State: &scheduler.State{Phase: softwareupdate.PhaseUnmanaged}},
	}
	rep := scheduler.BuildComplianceReport(reportNow, in, true)
	type summary struct {
		Devices, Compliant, Managed int
		Phases                      string
		OS                          string
		Past, Unsupported, Failures string
		Ahead                       string
		TTC                         string
	}
	have := summary{Devices: rep.Devices, Compliant: rep.Compliant, Managed: rep.Managed,
		Phases: fmt.Sprint(rep.ByPhase), OS: fmt.Sprint(rep.ByOSVersion)}
	for _, d := range rep.PastDeadline {
		have.Past += d.DeviceID
	}
	for _, d := range rep.Unsupported {
		have.Unsupported += d.DeviceID + ":" + d.Reason
	}
	for _, f := range rep.Failures {
		have.Failures += fmt.Sprintf("%s=%d%v", f.Reason, f.Count, f.Devices)
	}
	for i, d := range rep.DeadlinesAhead {
		if d.Count > 0 {
			have.Ahead += fmt.Sprintf("+%d:%s=%d ", i, d.Date, d.Count)
		}
	}
	for _, tc := range rep.TimeToCompliance {
		have.TTC += fmt.Sprintf("%s reached=%d outstanding=%d median=%s p90=%s", tc.Target, tc.Reached, tc.Outstanding, tc.Median(), tc.P90())
	}
	want := summary{Devices: 8, Compliant: 2, Managed: 6, // not h (unmanaged) nor g (unevaluated)
		Phases:      "map[compliant:2 enforce:1 failed:1 pending:1 unevaluated:1 unmanaged:1 unsupported:1]",
		OS:          "map[13.6:1 15.1:3 15.2:2 unknown:2]",
		Past:        "c",
		Unsupported: "f:board X is not supported by macOS 15.2",
		Failures:    "DownloadInsufficientSpace=1[d]",
		Ahead:       "+1:2026-03-11=1 +10:2026-03-20=1 ",
		// a took 60h (pending at -100 to compliant at -40), b 10h.
		TTC: "15.2 reached=2 outstanding=3 median=10h0m0s p90=60h0m0s",
	}
	if have != want {
		t.Errorf("report\nhave %+v\nwant %+v", have, want)
	}
	if len(rep.Rows) != 8 || rep.Rows[2].DeviceID != "c" || !rep.Rows[2].PastDeadline || rep.Rows[6].Phase != scheduler.PhaseUnevaluated {
		t.Errorf("rows = %+v", rep.Rows)
	}
	if got := len(rep.Rows[0].CSV()); got != len(scheduler.CSVHeader) {
		t.Errorf("CSV row has %d fields, header %d", got, len(scheduler.CSVHeader))
	}
	if r := scheduler.BuildComplianceReport(reportNow, in, false); r.Rows != nil {
		t.Error("rows without asking")
	}
}

func TestWhatIf(t *testing.T) {
	cat := testCatalog(t) // 14.6, 14.6.1, 15.1, 15.2 for J413AP and J493AP
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	in := []scheduler.WhatIfInput{
		{DeviceID: "sonoma", Facts: scheduler.Facts{OSVersion: "14.6", BoardID: "J413AP"}, Current: softwareupdate.PhaseCompliant},
		{DeviceID: "sequoia", Facts: scheduler.Facts{OSVersion: "15.1", BoardID: "J493AP"}},
		{DeviceID: "current", Facts: scheduler.Facts{OSVersion: "15.2", BoardID: "J493AP"}},
		{DeviceID: "intel", Facts: scheduler.Facts{OSVersion: "14.6", BoardID: "J152FAP"}},
		{DeviceID: "exempt", Facts: scheduler.Facts{OSVersion: "15.1", BoardID: "J413AP"},
			Exception: &softwareupdate.Exception{Exempt: true, Expires: now.Add(72 * time.Hour), Reason: "travel"}},
	}
	tests := []struct {
		name   string
		policy softwareupdate.Policy
		want   string
	}{
		{"manual no majors", softwareupdate.Policy{Mode: "manual", MinimumVersion: "15.2", Date: "2026-03-20", TimeOfDay: "17:00", TimeZone: "UTC"},
			"tomorrow=map[compliant:1 exempt:1 pending:2 unsupported:1] forced=0 major=0 unsupported=1 targets=map[14.6.1:1 15.2:2]"},
		{"manual majors, 2 days notice", softwareupdate.Policy{Mode: "manual", MinimumVersion: "15.2", Date: "2026-03-11", TimeOfDay: "17:00", TimeZone: "UTC", AllowMajorUpgrades: true, MinimumNoticeDays: 2},
			"tomorrow=map[compliant:1 exempt:1 notify:2 unsupported:1] forced=0 major=1 unsupported=1 targets=map[15.2:3]"},
		{"unmanaged", softwareupdate.Policy{Mode: "unmanaged"}, "tomorrow=map[unmanaged:5] forced=0 major=0 unsupported=0 targets=map[]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := scheduler.WhatIf(now, cat, "g", tt.policy, in)
			if err != nil {
				t.Fatal(err)
			}
			have := fmt.Sprintf("tomorrow=%v forced=%d major=%d unsupported=%d targets=%v", res.Tomorrow, res.ForcedWithin24h, res.MajorUpgrades, res.Unsupported, res.ByTarget)
			if have != tt.want {
				t.Errorf("have %s\nwant %s", have, tt.want)
			}
			if res.Devices != 5 || len(res.Rows) != 5 || res.Current[scheduler.PhaseUnevaluated] != 4 {
				t.Errorf("devices %d rows %d current %v", res.Devices, len(res.Rows), res.Current)
			}
		})
	}
	if _, err := scheduler.WhatIf(now, cat, "g", softwareupdate.Policy{Mode: "manual", MinimumVersion: "15.2", Date: "2020-01-01", TimeOfDay: "17:00", TimeZone: "UTC"}, in); err == nil {
		t.Error("a deadline in the past was accepted")
	}
}

func BenchmarkBuildComplianceReport(b *testing.B) {
	in := make([]scheduler.ReportInput, 10_000)
	for i := range in {
		st := &scheduler.State{Phase: softwareupdate.PhasePending, Target: "15.2", Deadline: reportNow.Add(time.Duration(i%20) * 24 * time.Hour), Facts: scheduler.Facts{OSVersion: "15.1"}}
		in[i] = scheduler.ReportInput{Device: reportDevice(fmt.Sprintf("D%06d", i), "15.1"), GroupID: "default", State: st,
			History: []scheduler.Transition{phaseAt(reportNow.Add(-48*time.Hour), "", "pending", "15.2"), phaseAt(reportNow.Add(-time.Hour), "pending", "compliant", "15.2")}}
	}
	b.ReportAllocs()
	for b.Loop() {
		scheduler.BuildComplianceReport(reportNow, in, true)
	}
}
