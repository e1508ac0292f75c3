package softwareupdate

import (
	"slices"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
)

func TestDecide(t *testing.T) {
	D := utc(2026, 9, 1, 21, 0)
	required := DeviceState{Target: Target{Status: StatusRequired, Version: v("26.6.1")}}
	with := func(edit func(s *DeviceState)) DeviceState { s := required; edit(&s); return s }
	day := 24 * time.Hour
	tests := []struct {
		name     string
		now      time.Time
		state    DeviceState
		deadline time.Time
		want     Phase
		next     time.Time
	}{
		{"pending", D.Add(-6 * day), required, D, PhasePending, D.Add(-5 * day)},
		{"notify starts at D-5d", D.Add(-5 * day), required, D, PhaseNotify, D},
		{"notify until D", D.Add(-time.Second), required, D, PhaseNotify, D},
		{"countdown at D", D, required, D, PhaseCountdown, D.Add(30 * time.Minute)},
		{"countdown until D+30m", D.Add(29 * time.Minute), required, D, PhaseCountdown, D.Add(30 * time.Minute)},
		{"enforce at D+30m", D.Add(30 * time.Minute), required, D, PhaseEnforce, time.Time{}},
		// Offline through the deadline: still enforce when it comes back.
		{"offline for days past the deadline", D.Add(3 * day), required, D, PhaseEnforce, time.Time{}},
		{"compliant", D.Add(3 * day), DeviceState{Target: Target{Status: StatusCompliant}}, time.Time{}, PhaseCompliant, time.Time{}},
		{"unsupported", D, DeviceState{Target: Target{Status: StatusUnsupported}}, time.Time{}, PhaseUnsupported, time.Time{}},
		{"unknown OS", D, DeviceState{Target: Target{Status: StatusUnknownOS}}, time.Time{}, PhaseUnknown, time.Time{}},
		{"not managed", D, DeviceState{Target: Target{Status: StatusNotManaged}}, time.Time{}, PhaseUnmanaged, time.Time{}},
		{"invalid policy", D, DeviceState{Target: Target{Status: StatusInvalidPolicy}}, time.Time{}, PhaseFailed, time.Time{}},
		{"unresolved target", D, DeviceState{}, D, PhaseFailed, time.Time{}},
		{"no deadline", D, required, time.Time{}, PhaseFailed, time.Time{}},
		{"failure, waits for an event", D.Add(-2 * day), with(func(s *DeviceState) { s.Failure = "DownloadInsufficientSpace" }), D, PhaseFailed, time.Time{}},
		{"failure until retry", D.Add(-2 * day), with(func(s *DeviceState) { s.Failure, s.RetryAt = "InstallFailed", D.Add(-day) }), D, PhaseFailed, D.Add(-day)},
		{"failure after retry time", D.Add(-day), with(func(s *DeviceState) { s.Failure, s.RetryAt = "InstallFailed", D.Add(-day) }), D, PhaseNotify, D},
		{"exempt", D.Add(day), with(func(s *DeviceState) {
			s.Exception = &Exception{Exempt: true, Expires: D.Add(2 * day), Reason: "CFO travelling"}
		}), D, PhaseExempt, D.Add(2 * day)},
		{"exemption expired", D.Add(3 * day), with(func(s *DeviceState) { s.Exception = &Exception{Exempt: true, Expires: D.Add(2 * day)} }), D, PhaseEnforce, time.Time{}},
		{"override is not an exemption", D.Add(-day), with(func(s *DeviceState) { s.Exception = &Exception{DeadlineOverride: D, Expires: D} }), D, PhaseNotify, D},
		{"exempt beats failure", D, with(func(s *DeviceState) {
			s.Failure, s.Exception = "InstallFailed", &Exception{Exempt: true, Expires: D.Add(day)}
		}), D, PhaseExempt, D.Add(day)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(tt.now, tt.state, tt.deadline)
			if got.Phase != tt.want || !got.NextChange.Equal(tt.next) {
				t.Errorf("Decide = %s next %v (%s), want %s next %v", got.Phase, got.NextChange, got.Reason, tt.want, tt.next)
			}
			if got.Reason == "" {
				t.Error("empty reason")
			}
			if !got.NextChange.IsZero() && !got.NextChange.After(tt.now) {
				t.Errorf("NextChange %v is not after now %v", got.NextChange, tt.now)
			}
			// Just before NextChange the answer is the same; at it, it differs.
			if !got.NextChange.IsZero() {
				if before := Decide(got.NextChange.Add(-time.Nanosecond), tt.state, tt.deadline); before.Phase != got.Phase {
					t.Errorf("phase changes before NextChange: %s", before.Phase)
				}
				if after := Decide(got.NextChange, tt.state, tt.deadline); after.Phase == got.Phase {
					t.Errorf("phase unchanged at NextChange: %s", after.Phase)
				}
			}
		})
	}
}

type step struct {
	phase Phase
	at    time.Time
}

// walk follows NextChange from start, as a scheduler's due-time index
// would, and returns each phase with the instant it began.
func walk(t *testing.T, start time.Time, st DeviceState, deadline time.Time) []step {
	t.Helper()
	var steps []step
	for now := start; ; {
		d := Decide(now, st, deadline)
		steps = append(steps, step{d.Phase, now})
		if d.NextChange.IsZero() {
			return steps
		}
		if len(steps) > 10 {
			t.Fatalf("no end to the timeline: %v", steps)
		}
		now = d.NextChange
	}
}

func phases(steps []step) []Phase {
	out := make([]Phase, len(steps))
	for i, s := range steps {
		out[i] = s.phase
	}
	return out
}

// TestTimelineToCompliance walks one Mac from pending to compliant.
func TestTimelineToCompliance(t *testing.T) {
	cat := testCatalog(t)
	p := Policy{Mode: ModeManual, MinimumVersion: "26.6.1", Date: "2026-09-01", TimeOfDay: "17:00", TimeZone: "America/New_York"}
	dev := DeviceFacts{OSVersion: v("26.5.2"), BoardID: boardNew}
	start := utc(2026, 8, 20, 12, 0)
	tgt := ResolveTarget(p, dev, cat, start)
	D := PersonalDeadline(p, tgt, start, nil, nil)
	if want := utc(2026, 9, 1, 21, 0); !D.Equal(want) {
		t.Fatalf("deadline %v, want %v", D, want)
	}
	steps := walk(t, start, DeviceState{Target: tgt}, D)
	want := []step{
		{PhasePending, start},
		{PhaseNotify, D.Add(-NotifyWindow)},
		{PhaseCountdown, D},
		{PhaseEnforce, D.Add(CountdownWindow)},
	}
	if !slices.Equal(steps, want) {
		t.Fatalf("timeline %v, want %v", steps, want)
	}
	// The Mac installs and reports 26.6.1 an hour later.
	dev.OSVersion = v("26.6.1")
	after := D.Add(90 * time.Minute)
	tgt = ResolveTarget(p, dev, cat, after)
	if d := Decide(after, DeviceState{Target: tgt}, PersonalDeadline(p, tgt, start, nil, nil)); d.Phase != PhaseCompliant || !d.NextChange.IsZero() {
		t.Errorf("after the update: %s next %v", d.Phase, d.NextChange)
	}
}

// TestExceptionExpiry: an exempted Mac rejoins its policy with fresh notice
// when the exemption ends, instead of going straight to enforcement.
func TestExceptionExpiry(t *testing.T) {
	cat := testCatalog(t)
	p := Policy{Mode: ModeManual, MinimumVersion: "26.6.1", Date: "2026-09-01", TimeOfDay: "17:00", TimeZone: "Europe/Berlin"}
	dev := DeviceFacts{OSVersion: v("26.5.2"), BoardID: boardNew}
	first := utc(2026, 8, 1, 8, 0)
	ex := &Exception{Exempt: true, Expires: utc(2026, 9, 10, 12, 0), Reason: "on leave", GrantedBy: "bob"}
	start := utc(2026, 9, 5, 0, 0) // policy deadline already passed
	tgt := ResolveTarget(p, dev, cat, start)
	D := PersonalDeadline(p, tgt, first, ex, nil)
	// 09-10 12:00 UTC + 5 days = 09-15 14:00 CEST, rounded up to 17:00 CEST.
	if want := utc(2026, 9, 15, 15, 0); !D.Equal(want) {
		t.Fatalf("deadline %v, want %v", D, want)
	}
	steps := walk(t, start, DeviceState{Target: tgt, Exception: ex}, D)
	want := []step{
		{PhaseExempt, start},
		{PhasePending, ex.Expires},
		{PhaseNotify, D.Add(-NotifyWindow)},
		{PhaseCountdown, D},
		{PhaseEnforce, D.Add(CountdownWindow)},
	}
	if !slices.Equal(steps, want) {
		t.Fatalf("timeline %v, want %v", steps, want)
	}
	// Without the exception the Mac would be enforced at once.
	if d := Decide(start, DeviceState{Target: tgt}, PersonalDeadline(p, tgt, first, nil, nil)); d.Phase != PhaseEnforce {
		t.Errorf("without exception: %s", d.Phase)
	}
}

// TestSwitchToAutomaticGivesNotice: a fleet switched to automatic mode long
// after Apple's last release (nothing posted recently, every deadline from
// the posting dates already past) gets the minimum notice: nobody is thrown
// into a countdown at once.
func TestSwitchToAutomaticGivesNotice(t *testing.T) {
	cat := catalog.Default() // last release posted 2026-08-17
	p := Policy{Mode: ModeAutomatic, DelayDays: 7, TimeOfDay: "09:00", TimeZone: "America/New_York", AllowMajorUpgrades: true}
	switched := utc(2026, 10, 15, 18, 30)
	counts := map[Phase]int{}
	for _, rel := range cat.Releases() {
		if rel.Version.Major() < 14 {
			continue
		}
		for _, board := range []string{"J413AP", "J314cAP", "J132AP", "VMA2MACOSAP"} {
			dev := DeviceFacts{OSVersion: rel.Version, BoardID: board}
			tgt := ResolveTarget(p, dev, cat, switched)
			D := PersonalDeadline(p, tgt, switched, nil, nil)
			d := Decide(switched, DeviceState{Target: tgt}, D)
			counts[d.Phase]++
			if tgt.Status != StatusRequired {
				continue
			}
			if pi := PolicyInstant(p, tgt, nil); !pi.Before(switched) {
				t.Errorf("%s on %s: policy instant %v is not in the past", board, rel.Version, pi)
			}
			if D.Sub(switched) < 5*24*time.Hour {
				t.Errorf("%s on %s: deadline %v gives less than 5 days", board, rel.Version, D)
			}
			// The deadline falls at the policy's 09:00, so notification
			// starts within a day of the switch.
			if d.Phase != PhasePending && d.Phase != PhaseNotify || D.Sub(switched) > 6*24*time.Hour {
				t.Errorf("%s on %s: phase %s, deadline %v", board, rel.Version, d.Phase, D)
			}
		}
	}
	if counts[PhasePending] == 0 || counts[PhaseCountdown] != 0 || counts[PhaseEnforce] != 0 {
		t.Errorf("phases after the switch: %v", counts)
	}
}
