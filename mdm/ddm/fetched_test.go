package ddm_test

import (
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/ddm"
)

// TestEnforcementFetchedAt: the first fetch of the enforcement declaration
// is recorded (and only the first); it is kept when the declaration's
// content changes (the Mac still holds the version it fetched), dropped
// when the enforcement is removed or the Mac re-enrolls. Fetching the
// status subscription records nothing.
func TestEnforcementFetchedAt(t *testing.T) {
	clk := clock.NewFake(t0)
	s := ddm.New(newStore(t), &queue{}, clk)
	ctx := t.Context()
	e := ddm.Enforcement{TargetOSVersion: "15.4", Deadline: t0.Add(72 * time.Hour), Location: time.UTC}
	fetched := func() time.Time {
		t.Helper()
		r, err := s.Record(ctx, "MAC")
		if err != nil || r.Enforcement == nil {
			t.Fatalf("record %+v, %v", r, err)
		}
		return r.Enforcement.FetchedAt
	}
	if _, err := s.SetEnforcement(ctx, "MAC", e); err != nil {
		t.Fatal(err)
	}
	decl(t, s, "MAC", ddm.KindConfiguration, ddm.IDStatusSubscriptions)
	if got := fetched(); !got.IsZero() {
		t.Fatalf("FetchedAt %v after fetching the status subscription only", got)
	}
	first := t0.Add(time.Minute)
	clk.Set(first)
	decl(t, s, "MAC", ddm.KindConfiguration, ddm.IDEnforcement)
	clk.Set(first.Add(time.Hour))
	decl(t, s, "MAC", ddm.KindConfiguration, ddm.IDEnforcement)
	if got := fetched(); !got.Equal(first) {
		t.Fatalf("FetchedAt %v, want the first fetch %v", got, first)
	}
	e.Deadline = e.Deadline.Add(time.Hour)
	if changed, err := s.SetEnforcement(ctx, "MAC", e); err != nil || !changed {
		t.Fatalf("new deadline: %v, %v", changed, err)
	}
	if got := fetched(); !got.Equal(first) {
		t.Errorf("FetchedAt %v after a content change, want %v kept", got, first)
	}
	s.Checkin(ctx, "MAC", &mdm.CheckinMessage{MessageType: mdm.Authenticate, Enrollment: mdm.Enrollment{UDID: "MAC"}})
	if got := fetched(); !got.IsZero() {
		t.Errorf("FetchedAt %v after re-enrollment, want none", got)
	}
	if _, err := s.RemoveEnforcement(ctx, "MAC"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetEnforcement(ctx, "MAC", e); err != nil {
		t.Fatal(err)
	}
	if got := fetched(); !got.IsZero() {
		t.Errorf("FetchedAt %v for a new enforcement, want none", got)
	}
}
