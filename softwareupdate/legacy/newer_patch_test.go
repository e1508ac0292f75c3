package legacy

import (
	"strings"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate"
)

// productKeyFor takes exactly the target when offered, else the lowest
// newer version of the target's major; never an older one, another major,
// or a Rapid Security Response.
func TestProductKeyForNewerPatch(t *testing.T) {
	u := func(key, v string) AvailableUpdate { return AvailableUpdate{ProductKey: key, Version: v} }
	rsr := AvailableUpdate{ProductKey: "RSR", Version: "13.7.7", IsSecurityResponse: true}
	for _, c := range []struct {
		name   string
		list   []AvailableUpdate
		target string
		want   string
	}{
		{"exact", []AvailableUpdate{u("A", "13.7.8"), u("B", "13.7.7")}, "13.7.7", "B"},
		{"only a newer patch", []AvailableUpdate{u("A", "13.7.8")}, "13.7.7", "A"},
		{"lowest newer patch", []AvailableUpdate{u("A", "13.7.9"), u("B", "13.7.8")}, "13.7.7", "B"},
		{"older only", []AvailableUpdate{u("A", "13.7.6")}, "13.7.7", ""},
		{"another major", []AvailableUpdate{u("A", "14.8.9")}, "13.7.7", ""},
		{"rsr skipped", []AvailableUpdate{rsr}, "13.7.7", ""},
		{"bad target", []AvailableUpdate{u("A", "13.7.8")}, "x", ""},
	} {
		if got := productKeyFor(c.list, c.target); got != c.want {
			t.Errorf("%s: productKeyFor = %q, want %q", c.name, got, c.want)
		}
	}
}

// A Mac on macOS 12+ within its notice window is sent the target by
// ProductVersion with no scan first. When it answers that the version is
// not available (it offers only a newer patch), that is no failure: the
// enforcer lists the updates it offers and downloads the offered newer patch by its key.
func TestByVersionNotAvailableRescans(t *testing.T) {
	e := New(Config{})
	st := baseState("15.1")
	at := now
	if got, _ := step(t, e, st, softwareupdate.PhaseNotify, at); len(got) != 1 || !strings.Contains(got[0], "version=15.2") {
		t.Fatalf("first step = %v, want a DownloadOnly by version", got)
	}
	notAvailable := report(t, map[string]any{"UpdateResults": []any{map[string]any{"ProductKey": "15.2", "InstallAction": "Error", "Status": "Idle",
		"ErrorChain": []any{map[string]any{"ErrorCode": 7, "ErrorDomain": "SUMacControllerError", "LocalizedDescription": "The requested update is not available"}}}}})
	ev := answer(t, e, st, mdm.Acknowledged, notAvailable, at)
	if st.Failure != "" || st.Step != StepRescan || len(ev) != 1 || !strings.Contains(ev[0].Reason, "listing the updates the Mac offers") {
		t.Fatalf("after not available: failure %q step %q events %+v", st.Failure, st.Step, ev)
	}
	if got, _ := step(t, e, st, softwareupdate.PhaseNotify, at); len(got) != 1 || got[0] != "AvailableOSUpdates" {
		t.Fatalf("after not available: sent %v, want the list", got)
	}
	if got, _ := step(t, e, st, softwareupdate.PhaseNotify, at.Add(time.Minute)); len(got) != 0 {
		t.Fatalf("while the list is awaited: sent %v", got)
	}
	list := report(t, map[string]any{"AvailableOSUpdates": []any{map[string]any{"ProductKey": "MSU_UPDATE_24D60_patch_15.3_minor", "Version": "15.3", "Build": "24D60"}}})
	ev = answer(t, e, st, mdm.Acknowledged, list, at)
	if st.ProductKey != "MSU_UPDATE_24D60_patch_15.3_minor" || len(ev) != 1 || !strings.Contains(ev[0].Reason, "offers 15.3 (at or above the target 15.2)") {
		t.Fatalf("after the list: key %q events %+v", st.ProductKey, ev)
	}
	if got, _ := step(t, e, st, softwareupdate.PhaseNotify, at); len(got) != 1 || !strings.Contains(got[0], "MSU_UPDATE_24D60_patch_15.3_minor") {
		t.Fatalf("after the list: sent %v, want a DownloadOnly of the offered key", got)
	}
	if st.Failure != "" {
		t.Errorf("failure %q", st.Failure)
	}
}
