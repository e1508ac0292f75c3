package console

import (
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

func TestBuildOverview(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	row := func(id, group string, phase softwareupdate.Phase, seen time.Duration, noBootstrap bool) scheduler.ReportRow {
		return scheduler.ReportRow{DeviceID: id, GroupID: group, Phase: phase, Enabled: true, LastSeen: now.Add(-seen), BootstrapMissing: noBootstrap}
	}
	rows := []scheduler.ReportRow{
		row("a", "pilot", softwareupdate.PhaseCompliant, time.Hour, false),
		row("b", "pilot", softwareupdate.PhaseNotify, time.Hour, true),
		row("c", "broad", softwareupdate.PhaseCompliant, 8*24*time.Hour, false),
		row("d", "broad", softwareupdate.PhaseFailed, time.Hour, false),
		row("e", "default", softwareupdate.PhaseUnmanaged, 30*24*time.Hour, true),
	}
	rep := scheduler.BuildComplianceReport(now, nil, false)
	rep.Rows, rep.Devices, rep.Managed, rep.Compliant = rows, 5, 4, 2
	rep.ByPhase = map[softwareupdate.Phase]int{"compliant": 2, "notify": 1, "failed": 1, "unmanaged": 1}
	groups := []scheduler.Group{{ID: "default", Name: "Default"}, {ID: "pilot", Name: "Pilot"}, {ID: "broad"}}
	policies := map[string]softwareupdate.Policy{"pilot": {RingOffsetDays: 0}, "broad": {RingOffsetDays: 3}}
	rels := []catalog.Release{
		{Version: catalog.MustParseVersion("15.7"), PostingDate: now.AddDate(0, 0, -20)},
		{Version: catalog.MustParseVersion("15.7.1"), PostingDate: now.AddDate(0, 0, -10)},
		{Version: catalog.MustParseVersion("15.7.2"), PostingDate: now.AddDate(0, 0, -1), Supplemental: true},
	}
	o := BuildOverview(now, rep, groups, policies, rels)
	if o.CompliancePct != 50 {
		t.Errorf("compliance = %v%%", o.CompliancePct)
	}
	wantGroups := map[string]Tally{
		"broad":   {Key: "broad", Name: "broad", Devices: 2, Managed: 2, Compliant: 1, Pct: 50},
		"default": {Key: "default", Name: "Default", Devices: 1},
		"pilot":   {Key: "pilot", Name: "Pilot", Devices: 2, Managed: 2, Compliant: 1, Pct: 50},
	}
	if len(o.Groups) != len(wantGroups) {
		t.Fatalf("groups = %+v", o.Groups)
	}
	for _, g := range o.Groups {
		if g != wantGroups[g.Key] {
			t.Errorf("group %s = %+v, want %+v", g.Key, g, wantGroups[g.Key])
		}
	}
	// Rings come from policies: the default group has none.
	if len(o.Rings) != 2 || o.Rings[0].Name != "+0 days" || o.Rings[0].Devices != 2 || o.Rings[1].Name != "+3 days" || o.Rings[1].Compliant != 1 {
		t.Errorf("rings = %+v", o.Rings)
	}
	// Silent: enabled Macs not seen for SilentDays (c and e); no bootstrap
	// token counts only managed Macs (b, not the unmanaged e).
	if o.SilentTotal != 2 || o.NoBootstrapTotal != 1 || o.NoBootstrap[0].DeviceID != "b" {
		t.Errorf("silent %d, no bootstrap %d %+v", o.SilentTotal, o.NoBootstrapTotal, o.NoBootstrap)
	}
	// The catalog's age is the newest non-supplemental release's.
	if o.Newest == nil || o.Newest.Version.String() != "15.7.1" || o.CatalogAgeDays != 10 {
		t.Errorf("newest %+v, %d days", o.Newest, o.CatalogAgeDays)
	}
	var funnelSum int
	for _, p := range o.Funnel {
		funnelSum += p.Count
	}
	if funnelSum != rep.Devices {
		t.Errorf("funnel counts %d Macs of %d", funnelSum, rep.Devices)
	}
}
