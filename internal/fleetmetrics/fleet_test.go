package fleetmetrics

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

type fakeReports struct {
	rep   *scheduler.ComplianceReport
	calls int
}

func (f *fakeReports) Compliance(context.Context, bool) (*scheduler.ComplianceReport, error) {
	f.calls++
	return f.rep, nil
}

type fakePolicies struct {
	groups   []scheduler.Group
	policies map[string]softwareupdate.Policy
}

func (f fakePolicies) Groups(context.Context) ([]scheduler.Group, error) { return f.groups, nil }
func (f fakePolicies) Policy(_ context.Context, g string) (*scheduler.PolicyRecord, error) {
	p, ok := f.policies[g]
	if !ok {
		return nil, storage.ErrNotFound
	}
	return &scheduler.PolicyRecord{GroupID: g, Policy: p}, nil
}

type fakeCatalog []catalog.Release

func (c fakeCatalog) Releases() []catalog.Release { return c }

func TestFleetCollector(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	clk := clock.NewFake(now)
	// MaxGroups+2 groups: the last two are summed as "other".
	var groups []scheduler.Group
	var rows []scheduler.ReportRow
	for i := range MaxGroups + 2 {
		g := fmt.Sprintf("g%03d", i)
		groups = append(groups, scheduler.Group{ID: g})
		rows = append(rows, scheduler.ReportRow{DeviceID: "d" + g, GroupID: g, Phase: softwareupdate.PhaseNotify, Enabled: true})
	}
	rows = append(rows,
		scheduler.ReportRow{DeviceID: "x1", GroupID: "g000", Phase: softwareupdate.PhaseCompliant, Enabled: true},
		scheduler.ReportRow{DeviceID: "x2", GroupID: "g001", Phase: softwareupdate.PhaseUnmanaged})
	rep := &scheduler.ComplianceReport{GeneratedAt: now, Devices: len(rows), Rows: rows, PastDeadline: []scheduler.DeviceBrief{{DeviceID: "dg000"}}}
	reports := &fakeReports{rep: rep}
	pol := fakePolicies{groups: groups, policies: map[string]softwareupdate.Policy{
		"g000": {Mode: softwareupdate.ModeManual, RingOffsetDays: 3},
		"g001": {Mode: softwareupdate.ModeUnmanaged},
	}}
	cat := fakeCatalog{{Version: catalog.MustParseVersion("15.7.1"), PostingDate: now.Add(-48 * time.Hour)}}
	f := NewFleet(reports, pol, cat, clk, nil, time.Minute)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(f)

	want := `
# HELP sundial_fleet_compliance_ratio Compliant Macs over managed Macs, per group policy (mode and ring offset as labels); 1 when none is managed.
# TYPE sundial_fleet_compliance_ratio gauge
sundial_fleet_compliance_ratio{group="g000",mode="manual",ring_offset_days="3"} 0.5
sundial_fleet_compliance_ratio{group="g001",mode="unmanaged",ring_offset_days="0"} 0
# HELP sundial_catalog_newest_release_age_seconds Seconds since Apple posted the newest release in the catalog (a stale catalog shows as a growing value).
# TYPE sundial_catalog_newest_release_age_seconds gauge
sundial_catalog_newest_release_age_seconds 172800
# HELP sundial_fleet_past_deadline_macs Macs past their deadline and not compliant.
# TYPE sundial_fleet_past_deadline_macs gauge
sundial_fleet_past_deadline_macs 1
# HELP sundial_fleet_enrolled_macs Macs whose enrollment is active (between TokenUpdate and CheckOut).
# TYPE sundial_fleet_enrolled_macs gauge
sundial_fleet_enrolled_macs 203
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "sundial_fleet_compliance_ratio",
		"sundial_catalog_newest_release_age_seconds", "sundial_fleet_past_deadline_macs", "sundial_fleet_enrolled_macs"); err != nil {
		t.Fatal(err)
	}
	// Groups past MaxGroups share the "other" label: the series stay bounded.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "sundial_fleet_macs" {
			continue
		}
		other := 0.0
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "group" && l.GetValue() == Other {
					other += m.GetGauge().GetValue()
				}
			}
		}
		// notify per kept group and other, g000 compliant, g001 unmanaged
		if len(mf.GetMetric()) != MaxGroups+3 || other != 2 {
			t.Errorf("%d series, %v Macs in other", len(mf.GetMetric()), other)
		}
	}
	// Scrapes within maxAge share one report.
	if reports.calls != 1 {
		t.Fatalf("%d reports for two gathers", reports.calls)
	}
	clk.Advance(30 * time.Second)
	reg.Gather()
	if reports.calls != 1 {
		t.Fatalf("a scrape within a minute built a report (%d)", reports.calls)
	}
	clk.Advance(30 * time.Second)
	reg.Gather()
	if reports.calls != 2 {
		t.Fatalf("a scrape after a minute did not rebuild (%d)", reports.calls)
	}
}
