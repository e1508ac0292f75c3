package scheduler_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm/mdmtest"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
)

// A real Mac's Software Update offers only the latest patch of its major:
// once 15.3 is out, a Mac on 15.1 is no longer offered 15.2. With 15.2 the
// target, ScheduleOSUpdate by ProductVersion 15.2 answers "update not
// available" (SUMacControllerError 7). The enforcer then lists what the Mac
// offers and installs 15.3, an offered version at or above the target: the
// Mac ends compliant, never failed.
func TestLegacyOfferedOnlyANewerPatch(t *testing.T) {
	rel := func(v, build, posted string) catalog.Release {
		d, _ := time.Parse(time.DateOnly, posted)
		return catalog.Release{Version: catalog.MustParseVersion(v), Build: build, PostingDate: d, SupportedDevices: []string{"J413AP", "J493AP"}}
	}
	cat, err := catalog.New(rel("15.1", "24B83", "2025-10-28"), rel("15.2", "24C101", "2026-02-20"), rel("15.3", "24D60", "2026-03-01"))
	if err != nil {
		t.Fatal(err)
	}
	r := newLegacyRunWith(t, cat, softwareupdate.Policy{Mode: softwareupdate.ModeManual, MinimumVersion: "15.2"})
	m := r.enroll("newer", mdmtest.WithCatalog(mdmtest.MinorUpdate("15.3", "24D60")))
	r.until(r.t0.Add(10*time.Minute), 10*time.Minute)
	notify := r.D.Add(-softwareupdate.NotifyWindow)
	r.clk.Set(notify)
	r.until(notify.Add(12*time.Hour), 30*time.Minute)
	enforce := r.D.Add(softwareupdate.CountdownWindow)
	r.clk.Set(enforce)
	got := r.until(enforce.Add(12*time.Hour), 30*time.Minute)
	for _, m := range []*mac{m} {
		st := state(t, r.s, m)
		h := history(t, r.s, m)
		if st.Phase != softwareupdate.PhaseCompliant || m.dev.OSVersion() != "15.3" {
			t.Fatalf("%s: phase %s on %s; history:\n%s", m.name, st.Phase, m.dev.OSVersion(), h)
		}
		if strings.Contains(h, "failure") || strings.Contains(h, "retrying after") {
			t.Errorf("%s was shown failed on its way to 15.3:\n%s", m.name, h)
		}
		if !strings.Contains(h, "offers 15.3 (at or above the target 15.2)") {
			t.Errorf("%s: history does not say 15.3 is installed for target 15.2:\n%s", m.name, h)
		}
		if n := count(got, m, "ScheduleOSUpdate", "InstallForceRestart"); n != 1 {
			t.Errorf("%s: InstallForceRestart sent %d times after the deadline, want 1:\n%s", m.name, n, diffSent(got, nil))
		}
	}
}
