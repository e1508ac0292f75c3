package main

// End-to-end test of issue 20's per-device states through the real server
// and the CLI: a device-local policy needs a fallback zone and writes 12:00
// as the Mac's own noon; a Mac that rejects the enforcement declaration is
// failed with Apple's reason in devices show, the API and the report; an
// unsupervised Mac is ineligible, not failed, and its agent still has the
// deadline.

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm/ddm"
	"github.com/sundial-mdm/sundial/mdm/mdmtest"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

func TestDeviceStatesThroughServerAndCLI(t *testing.T) {
	ts := startTestServer(t, t.TempDir())
	ctx := t.Context()
	env := map[string]string{"SUNDIAL_URL": ts.url, "SUNDIAL_API_KEY": ts.admin.APIKey}
	cli := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(ctx, append(args, "--data-dir", ts.dir), func(k string) string { return env[k] }, &out, &errb)
		return code, out.String(), errb.String()
	}
	target, hw := declarativeTarget(t)
	tv := target.Version.String()
	rejecting := enrollAgentMac(t, ts, mdmtest.WithHardware(hw), mdmtest.WithOS("15.0", "24A335"), mdmtest.WithSupervised(true),
		mdmtest.WithCatalog(mdmtest.MinorUpdate(tv, target.Build)))
	rejecting.SetDeclarationFailure(ddm.TypeEnforcementSpecific, "Error.ConfigurationCannotBeApplied")
	byod := enrollAgentMac(t, ts, mdmtest.WithHardware(hw), mdmtest.WithOS("15.0", "24A335"), mdmtest.WithSupervised(false),
		mdmtest.WithCatalog(mdmtest.MinorUpdate(tv, target.Build)))

	if code, out, errs := cli("groups", "create", "field", "--name", "Field Macs"); code != 0 {
		t.Fatalf("groups create = %d %q %q", code, out, errs)
	}
	if code, out, errs := cli("groups", "assign", "field", rejecting.UDID, byod.UDID); code != 0 {
		t.Fatalf("groups assign = %d %q %q", code, out, errs)
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	date, deadline := policyDate(berlin, 3)
	set := []string{"policy", "set", "field", "--mode", "manual", "--version", tv, "--date", date, "--time", "12:00", "--tz", "device-local", "--notice", "1"}
	// The CLI names the setting by its flag (the merged CLI branch).
	if code, _, errs := cli(set...); code != exitUsage || !strings.Contains(errs, "--fallback-tz") {
		t.Fatalf("device-local without a fallback zone = exit %d %q, want %d naming --fallback-tz", code, errs, exitUsage)
	}
	if code, out, errs := cli(append(set, "--fallback-tz", "Europe/Berlin")...); code != 0 {
		t.Fatalf("policy set = %d %q %q", code, out, errs)
	}
	if code, out, _ := cli("policy", "show", "field"); code != 0 || !strings.Contains(out, "fallback:  Europe/Berlin") {
		t.Errorf("policy show = %d %q", code, out)
	}

	// No agent has reported a zone: noon in the fallback zone, written as
	// 12:30 (deadline + 30 min) for the Mac to read in its own zone.
	st := schedState(t, ts, rejecting.UDID, func(st *scheduler.State) bool { return st.Phase == softwareupdate.PhaseNotify })
	if !st.Deadline.Equal(deadline) || st.Path != softwareupdate.PathDeclarative {
		t.Fatalf("deadline %v path %s, want %v declarative", st.Deadline, st.Path, deadline)
	}
	rec, err := ts.app.ddm.Record(ctx, rejecting.UDID)
	if err != nil || rec.Enforcement == nil || rec.Enforcement.Payload.TargetLocalDateTime != date+"T12:30:00" {
		t.Fatalf("enforcement = %+v, %v; want TargetLocalDateTime %sT12:30:00", rec.Enforcement, err, date)
	}

	// The Mac syncs and refuses the declaration: failed with Apple's code.
	if _, err := rejecting.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	st = schedState(t, ts, rejecting.UDID, func(st *scheduler.State) bool { return st.Phase == softwareupdate.PhaseFailed })
	if !strings.Contains(st.Failure, "Error.ConfigurationCannotBeApplied") || st.FailureSource != scheduler.FailureFromDeclaration {
		t.Fatalf("failure = %q (%s)", st.Failure, st.FailureSource)
	}
	if code, out, _ := cli("devices", "show", rejecting.UDID); code != 0 || !strings.Contains(out, "failed") || !strings.Contains(out, "Error.ConfigurationCannotBeApplied") {
		t.Errorf("devices show = %d %q", code, out)
	}
	apiStatus := func(id string) string {
		t.Helper()
		list, err := ts.admin.Devices(ctx, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range list.Devices {
			if d.ID == id {
				return d.Status + " " + d.Failure
			}
		}
		return ""
	}
	if s := apiStatus(rejecting.UDID); !strings.HasPrefix(s, "failed ") || !strings.Contains(s, "Error.ConfigurationCannotBeApplied") {
		t.Errorf("API status of the rejecting Mac = %q", s)
	}

	// The unsupervised Mac: ineligible, never failed, never sent an update
	// command, and its agent still shows the deadline.
	st = schedState(t, ts, byod.UDID, func(st *scheduler.State) bool { return st.Phase == softwareupdate.PhaseIneligible })
	if st.Reason != "ineligible: not supervised" || st.Failure != "" || !st.Deadline.Equal(deadline) {
		t.Errorf("byod = %q failure %q deadline %v", st.Reason, st.Failure, st.Deadline)
	}
	if s := apiStatus(byod.UDID); strings.TrimSpace(s) != "ineligible" {
		t.Errorf("API status of the unsupervised Mac = %q", s)
	}
	plan, err := newAgentClient(t, *byod.Settings).Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !plan.Active() || !plan.Deadline.Equal(deadline) || !plan.Declarative() {
		t.Errorf("plan of the unsupervised Mac = %+v, want the deadline with Start Now opening Software Update", plan)
	}
	for _, rt := range []string{"ScheduleOSUpdate", "ScheduleOSUpdateScan", "DeclarativeManagement"} {
		if n, _ := countCommands(t, ts, byod.UDID, rt); n != 0 {
			t.Errorf("the unsupervised Mac was sent %d %s", n, rt)
		}
	}

	if code, out, _ := cli("devices", "list", "--status", "ineligible"); code != 0 || !strings.Contains(out, byod.UDID) || strings.Contains(out, rejecting.UDID) {
		t.Errorf("devices list --status ineligible = %d %q", code, out)
	}

	code, out, _ := cli("report", "compliance")
	if code != 0 || !strings.Contains(out, "INELIGIBLE") || !strings.Contains(out, "not supervised") || !strings.Contains(out, "Error.ConfigurationCannotBeApplied") {
		t.Errorf("report compliance = %d\n%s", code, out)
	}
	rep, err := ts.admin.ComplianceReport(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.ByStatus["ineligible"] != 1 || rep.ByStatus["failed"] != 1 || len(rep.Ineligible) != 1 || len(rep.Failures) != 1 {
		t.Errorf("report: by status %v, ineligible %+v, failures %+v", rep.ByStatus, rep.Ineligible, rep.Failures)
	}
}
