package declarative

import (
	"context"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm/ddm"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

type fakeDDM struct {
	set     []ddm.Enforcement
	removed int
	active  bool
}

func (f *fakeDDM) SetEnforcement(ctx context.Context, id string, e ddm.Enforcement) (bool, error) {
	same := func(a, b ddm.Enforcement) bool { // by content, as the DDM layer's tokens do
		return a.TargetOSVersion == b.TargetOSVersion && a.Deadline.Equal(b.Deadline) && a.Location.String() == b.Location.String() && a.DetailsURL == b.DetailsURL
	}
	changed := len(f.set) == 0 || !same(f.set[len(f.set)-1], e) || !f.active
	f.set = append(f.set, e)
	f.active = true
	return changed, nil
}

func (f *fakeDDM) RemoveEnforcement(ctx context.Context, id string) (bool, error) {
	if !f.active {
		return false, nil
	}
	f.active = false
	f.removed++
	return true, nil
}

type zonesFor struct{ device, policy string }

func (z zonesFor) DeviceZone(context.Context, string) string           { return z.device }
func (z zonesFor) PolicyZone(context.Context, string) (string, string) { return z.policy, "" }

func TestStepDeclaresInTheMacsZoneAndRetires(t *testing.T) {
	f := &fakeDDM{}
	e := New(f, zonesFor{device: "Asia/Tokyo"}, nil)
	st := &scheduler.State{DeviceID: "A", GroupID: "g", Target: "15.4"}
	d := time.Date(2026, 12, 15, 16, 0, 0, 0, time.UTC) // 17:00 Berlin, 01:00 Tokyo next day
	now := d.Add(-48 * time.Hour)
	act, err := e.Step(context.Background(), st, scheduler.Input{Policy: &softwareupdate.Policy{TimeZone: "Europe/Berlin"}, Decision: softwareupdate.Decision{Phase: softwareupdate.PhaseNotify, Deadline: d}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.set) != 1 || f.set[0].Location.String() != "Asia/Tokyo" || !f.set[0].Deadline.Equal(d) || st.Step != StepDeclared || len(act.Events) != 1 {
		t.Fatalf("set = %+v, step %q, events %d", f.set, st.Step, len(act.Events))
	}
	// The same plan again changes nothing and records no new step.
	act, _ = e.Step(context.Background(), st, scheduler.Input{Policy: &softwareupdate.Policy{TimeZone: "Europe/Berlin"}, Decision: softwareupdate.Decision{Phase: softwareupdate.PhaseNotify, Deadline: d}, Now: now.Add(time.Hour)})
	if len(act.Events) != 0 {
		t.Errorf("an unchanged declaration was recorded again: %+v", act.Events)
	}
	// Leaving the path removes the declaration, once.
	ev, err := e.Retire(context.Background(), st, now)
	if err != nil || len(ev) != 1 || f.removed != 1 {
		t.Fatalf("retire = %+v, %v, removed %d", ev, err, f.removed)
	}
	if ev, _ := e.Retire(context.Background(), st, now); len(ev) != 0 || f.removed != 1 {
		t.Errorf("second retire = %+v, removed %d", ev, f.removed)
	}
	// Compliant removes it too.
	e.Step(context.Background(), st, scheduler.Input{Policy: &softwareupdate.Policy{TimeZone: "Europe/Berlin"}, Decision: softwareupdate.Decision{Phase: softwareupdate.PhaseNotify, Deadline: d}, Now: now})
	e.Step(context.Background(), st, scheduler.Input{Policy: &softwareupdate.Policy{TimeZone: "Europe/Berlin"}, Decision: softwareupdate.Decision{Phase: softwareupdate.PhaseCompliant}, Now: now})
	if f.active || f.removed != 2 {
		t.Errorf("compliant Mac kept its declaration (removed %d)", f.removed)
	}
}

func TestPolicyZoneWhenTheMacsIsUnknown(t *testing.T) {
	f := &fakeDDM{}
	e := New(f, zonesFor{}, nil)
	st := &scheduler.State{DeviceID: "A", Target: "15.4"}
	d := time.Date(2026, 12, 15, 16, 0, 0, 0, time.UTC)
	pol := &softwareupdate.Policy{TimeZone: "Europe/Berlin", DetailsURL: "https://example.org/update"}
	if _, err := e.Step(context.Background(), st, scheduler.Input{Policy: pol, Decision: softwareupdate.Decision{Phase: softwareupdate.PhaseNotify, Deadline: d}, Now: d.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if len(f.set) != 1 || f.set[0].Location.String() != "Europe/Berlin" || f.set[0].DetailsURL != pol.DetailsURL {
		t.Fatalf("set = %+v", f.set)
	}
}
