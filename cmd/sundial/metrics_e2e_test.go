package main

import (
	"encoding/json"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scrape reads /metrics and returns the value of every series by its
// exposition name with labels, e.g. `sundial_fleet_macs{group="pilot",phase="notify"}`.
func scrape(t *testing.T, ts *testServer) map[string]float64 {
	t.Helper()
	resp, err := ts.getKeyed("/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	line := regexp.MustCompile(`^(\S+) (\S+)$`)
	for _, l := range strings.Split(string(data), "\n") {
		if m := line.FindStringSubmatch(l); m != nil && !strings.HasPrefix(l, "#") {
			v, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", l, err)
			}
			out[m[1]] = v
		}
	}
	return out
}

func TestFleetMetrics(t *testing.T) {
	f := newConsoleFleet(t)
	ts := f.ts
	// One Mac answers its queued commands.
	if _, err := f.macs[0].Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	rep, err := ts.admin.ComplianceReport(t.Context(), false)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]float64
	// The server's own scheduler loop takes the lease within a moment.
	waitFor(t, func() bool {
		m = scrape(t, ts)
		return m[`sundial_scheduler_leader{replica="`+replicaID()+`"}`] == 1 && m["sundial_scheduler_pass_duration_seconds_count"] > 0
	})
	for name, want := range map[string]float64{
		`sundial_fleet_macs_total`:                                                         float64(rep.Devices),
		`sundial_fleet_macs{group="pilot",phase="notify"}`:                                 float64(rep.ByPhase["notify"]),
		`sundial_fleet_macs{group="pilot",phase="compliant"}`:                              1,
		`sundial_fleet_macs{group="default",phase="unmanaged"}`:                            1,
		`sundial_fleet_compliance_ratio{group="pilot",mode="manual",ring_offset_days="0"}`: 1.0 / 3,
		`sundial_fleet_enrolled_macs`:                                                      4,
		`sundial_fleet_past_deadline_macs`:                                                 0,
		`sundial_mdm_enrolments_total`:                                                     4,
		`sundial_mdm_checkins_total{message_type="Authenticate"}`:                          4,
		`sundial_mdm_checkins_total{message_type="TokenUpdate"}`:                           4,
		`sundial_scheduler_pass_errors_total`:                                              0,
	} {
		if got, ok := m[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	if m[`sundial_commands_queued_total{request_type="DeviceInformation"}`] < 4 {
		t.Errorf("DeviceInformation queued = %v, want at least 4", m[`sundial_commands_queued_total{request_type="DeviceInformation"}`])
	}
	if m[`sundial_commands_reported_total{request_type="DeviceInformation",status="Acknowledged"}`] < 1 {
		t.Errorf("DeviceInformation acknowledged = %v, want at least 1", m[`sundial_commands_reported_total{request_type="DeviceInformation",status="Acknowledged"}`])
	}
	// Every command queued, by the service or a scheduler pass, is counted.
	// A pass may queue a command between the scrape and the listing (a Mac
	// that never answered its inventory is evaluated a few seconds after
	// enrolling), so compare until both are read with nothing queued between.
	var queued, listed float64
	count := func() {
		queued, listed = 0, 0
		for name, v := range scrape(t, ts) {
			if strings.HasPrefix(name, "sundial_commands_queued_total{") {
				queued += v
			}
		}
		for _, mac := range f.macs {
			cmds, err := ts.admin.Commands(t.Context(), mac.UDID)
			if err != nil {
				t.Fatal(err)
			}
			listed += float64(len(cmds))
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for count(); queued != listed && time.Now().Before(deadline); count() {
		time.Sleep(50 * time.Millisecond)
	}
	if queued != listed {
		t.Errorf("commands queued counted %v, the devices have %v", queued, listed)
	}
	if age := m["sundial_catalog_newest_release_age_seconds"]; age <= 0 {
		t.Errorf("catalog age = %v", age)
	}

	// Every metric the Grafana dashboard queries is exposed.
	families := map[string]bool{}
	for name := range m {
		families[strings.SplitN(name, "{", 2)[0]] = true
	}
	dash, err := os.ReadFile("../../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(dash) {
		t.Fatal("docs/grafana-dashboard.json is not JSON")
	}
	for _, name := range regexp.MustCompile(`sundial_[a-z_]+`).FindAllString(string(dash), -1) {
		// Vectors appear with their first event (a push, a failed declaration).
		if !families[name] && name != "sundial_push_pushes_total" && name != "sundial_ddm_status_errors_total" {
			t.Errorf("the dashboard queries %s, which /metrics does not expose", name)
		}
	}
}
