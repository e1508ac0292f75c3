package scheduler_test

import (
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/mdmtest"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// TestPartialDeviceInformationKeepsFacts: over real HTTP, an admin's
// DeviceInformation asking only for OSVersion and SerialNumber leaves the
// supervised Mac supervised, with its build, and on its way to its target.
// On main the answer replaced the stored inventory and the Mac was failed
// as "not supervised".
func TestPartialDeviceInformationKeepsFacts(t *testing.T) {
	ctx := t.Context()
	t0 := time.Now().UTC().Truncate(time.Hour)
	y, m, d := t0.Date()
	D := time.Date(y, m, d+10, 17, 0, 0, 0, time.UTC)
	clk := clock.NewFake(t0)
	s := newStack(t, clk, testCatalog(t))
	rec := &recorder{clk: clk}
	if _, err := s.mgr.SetPolicy(ctx, "admin@example.com", scheduler.DefaultGroupID, softwareupdate.Policy{
		Mode: softwareupdate.ModeManual, MinimumVersion: "15.2", Date: D.Format(time.DateOnly), TimeOfDay: "17:00", TimeZone: "UTC",
	}); err != nil {
		t.Fatal(err)
	}
	x := s.enroll(t, rec, "mac", mdmtest.WithSupervised(true), mdmtest.WithHardware(hwAir), mdmtest.WithOS("15.1", "24B83"),
		mdmtest.WithCatalog(mdmtest.MinorUpdate("15.2", "24C101")))
	s.settle(t, x)
	if st := state(t, s, x); st.Phase != softwareupdate.PhasePending || !st.Facts.Supervised {
		t.Fatalf("before = %s supervised %v", st.Phase, st.Facts.Supervised)
	}
	cmd, err := mdm.NewCommand("DeviceInformation", map[string]any{"Queries": []string{"OSVersion", "SerialNumber"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.store.Enqueue(ctx, []string{x.dev.UDID}, cmd, clk.Now()); err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(time.Hour))
	s.settle(t, x)
	dev, err := s.store.Device(ctx, x.dev.UDID)
	if err != nil {
		t.Fatal(err)
	}
	if !dev.Inventory.IsSupervised || dev.Inventory.BuildVersion != "24B83" || dev.Inventory.SoftwareUpdateDeviceID != "J413AP" || !dev.InventoryAt.Equal(clk.Now()) {
		t.Errorf("inventory after a partial answer = %+v at %v", dev.Inventory, dev.InventoryAt)
	}
	if st := state(t, s, x); st.Phase != softwareupdate.PhasePending || !st.Facts.Supervised || st.Failure != "" {
		t.Errorf("after = %s supervised %v failure %q", st.Phase, st.Facts.Supervised, st.Failure)
	}
}
