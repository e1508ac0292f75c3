package agent

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakePlans is a PlanSource the test can change while the runner runs.
type fakePlans struct {
	mu   sync.Mutex
	plan Plan
	err  error
}

func (f *fakePlans) Plan(context.Context) (Plan, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.plan, f.err
}

func (f *fakePlans) set(p Plan, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.plan, f.err = p, err
}

// fakeReporter records events; it refuses the first failures calls.
type fakeReporter struct {
	mu       sync.Mutex
	failures int
	calls    int
	events   []Event
}

func (f *fakeReporter) Report(_ context.Context, events []Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.failures > 0 {
		f.failures--
		return errors.New("server unreachable")
	}
	f.events = append(f.events, events...)
	return nil
}

func (f *fakeReporter) kinds(k EventKind) []Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Event
	for _, e := range f.events {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

type shownPrompt struct {
	at     time.Time
	prompt Prompt
}

// fakePresenter answers prompts with a script, immediately and at the
// bubble's current instant, and records everything it was asked to do.
type fakePresenter struct {
	mu       sync.Mutex
	script   func(p Prompt) (Choice, bool)
	shown    []shownPrompt
	statuses []Status
	opened   []string
}

func (f *fakePresenter) Present(ctx context.Context, p Prompt) (<-chan Choice, error) {
	f.mu.Lock()
	f.shown = append(f.shown, shownPrompt{time.Now(), p})
	c, answer := f.script(p)
	f.mu.Unlock()
	ch := make(chan Choice, 1)
	if answer {
		ch <- c
		close(ch)
		return ch, nil
	}
	go func() {
		<-ctx.Done()
		close(ch)
	}()
	return ch, nil
}

func (f *fakePresenter) SetStatus(_ context.Context, s Status) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statuses = append(f.statuses, s)
	return nil
}

func (f *fakePresenter) Open(_ context.Context, url string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opened = append(f.opened, url)
	return nil
}

// timeline returns what was shown as offsets from d.
func (f *fakePresenter) timeline(d time.Time) []shownAt {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []shownAt
	for _, s := range f.shown {
		out = append(out, shownAt{s.at.Sub(d), s.prompt.Kind})
	}
	return out
}

type shownAt struct {
	offset time.Duration
	kind   PromptKind
}

func newTestRunner(t *testing.T, plans PlanSource, rep Reporter, pres Presenter, path string, opts ...Option) *Runner {
	t.Helper()
	store := NewFileStore(path, slog.New(slog.DiscardHandler))
	return NewRunner(SystemClock{}, plans, rep, pres, store, opts...)
}

// runFor runs r inside the current synctest bubble for d of fake time.
func runFor(t *testing.T, r *Runner, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	time.Sleep(d)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	synctest.Wait()
}

// TestRunnerTimeline is the whole story with a real loop and fake time:
// D-6d nothing; D-5d banner; Remind in 1 hour; Remind Tomorrow (clamped at
// D); countdown at D; closed, so banners every 5 minutes; forced install.
func TestRunnerTimeline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		d := start.Add(6 * day)
		p := legacyPlan()
		p.Deadline = d
		plans := &fakePlans{plan: p}
		rep := &fakeReporter{}
		reminders := 0
		pres := &fakePresenter{script: func(pr Prompt) (Choice, bool) {
			switch pr.Kind {
			case PromptReminder:
				reminders++
				if reminders == 1 {
					return ChoiceRemindHour, true
				}
				return ChoiceRemindTomorrow, true
			case PromptCountdown:
				return ChoiceClose, true
			case PromptRestartSoon:
				return ChoiceDismiss, true
			}
			return "", false
		}}
		r := newTestRunner(t, plans, rep, pres, filepath.Join(t.TempDir(), "agent.json"))
		runFor(t, r, 7*day)

		h := time.Hour
		want := []shownAt{
			{-5 * day, PromptReminder},   // first banner
			{-5*day + h, PromptReminder}, // Remind in 1 hour
			{-4*day + h, PromptReminder}, // Remind Tomorrow
			{-3*day + h, PromptReminder}, //
			{-2*day + h, PromptReminder}, //
			{-1*day + h, PromptReminder}, // tomorrow would be past D: clamped
			{0, PromptCountdown},         // D: countdown, closed at once
			{5 * time.Minute, PromptRestartSoon},
			{10 * time.Minute, PromptRestartSoon},
			{15 * time.Minute, PromptRestartSoon},
			{20 * time.Minute, PromptRestartSoon},
			{25 * time.Minute, PromptRestartSoon},
			{30 * time.Minute, PromptInstallProgress}, // forced
		}
		if got := pres.timeline(d); !slices.Equal(got, want) {
			t.Errorf("timeline:\n got %v\nwant %v", got, want)
		}
		if got := pres.shown[6].prompt.EndsAt; !got.Equal(d.Add(30 * time.Minute)) {
			t.Errorf("countdown ends at %v, want D+30m", got)
		}
		if n := len(rep.kinds(EventForcedInstall)); n != 1 {
			t.Errorf("%d forced installs reported, want 1", n)
		}
		if n := len(rep.kinds(EventInstallRequested)); n != 0 {
			t.Errorf("%d install requests reported, want 0", n)
		}
		if n, want := len(rep.kinds(EventPromptShown)), len(want); n != want {
			t.Errorf("%d prompts reported shown, want %d", n, want)
		}
		choices := rep.kinds(EventUserChoice)
		if len(choices) != 12 || choices[0].Choice != ChoiceRemindHour || choices[1].Choice != ChoiceRemindTomorrow || choices[6].Choice != ChoiceClose {
			t.Errorf("choices reported = %+v", choices)
		}
		first := pres.statuses[0]
		if first.Visible {
			t.Errorf("menu status before D-5d = %+v, want hidden", first)
		}
		if s := pres.statuses[1]; !s.Visible || !s.Alert || s.Title != "macOS 15.4 (24E248)" {
			t.Errorf("menu status from D-5d = %+v, want a red dot with the update", s)
		}
	})
}

func TestRunnerStartNow(t *testing.T) {
	tests := []struct {
		name      string
		path      string
		wantOpens []string
	}{
		{"legacy: the server installs", PathLegacy, nil},
		{"declarative: Software Update opens", PathDeclarative, []string{SoftwareUpdateURL}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d := time.Now().Add(3 * day)
				p := legacyPlan()
				p.Deadline, p.Path = d, tt.path
				plans := &fakePlans{plan: p}
				rep := &fakeReporter{}
				pres := &fakePresenter{script: func(pr Prompt) (Choice, bool) {
					switch pr.Kind {
					case PromptReminder:
						return ChoiceLearnMore, true
					case PromptUpdateInfo:
						return ChoiceStartNow, true
					}
					return "", false
				}}
				r := newTestRunner(t, plans, rep, pres, filepath.Join(t.TempDir(), "agent.json"))

				// The Mac installs the update 40 minutes after Start Now.
				go func() {
					time.Sleep(40 * time.Minute)
					done := p
					done.Compliant = true
					plans.set(done, nil)
				}()
				runFor(t, r, 7*day)

				reqs := rep.kinds(EventInstallRequested)
				if len(reqs) != 1 {
					t.Fatalf("%d install requests, want exactly 1", len(reqs))
				}
				if reqs[0].TargetVersion != "15.4" || reqs[0].Path != tt.path {
					t.Errorf("install request = %+v", reqs[0])
				}
				want := []shownAt{
					{-3 * day, PromptReminder},
					{-3 * day, PromptUpdateInfo},
					{-3 * day, PromptInstallProgress},
				}
				if got := pres.timeline(d); !slices.Equal(got, want) {
					t.Errorf("timeline:\n got %v\nwant %v", got, want)
				}
				if !slices.Equal(pres.opened, tt.wantOpens) {
					t.Errorf("opened %v, want %v", pres.opened, tt.wantOpens)
				}
				if last := pres.statuses[len(pres.statuses)-1]; last.Visible {
					t.Errorf("menu status after compliance = %+v, want hidden", last)
				}
				if n := len(rep.kinds(EventForcedInstall)); n != 0 {
					t.Errorf("%d forced installs on a compliant Mac", n)
				}
			})
		})
	}
}

// TestRunnerRestartKeepsSnooze stops the agent in the middle of a snooze;
// the new process, with the server unreachable, honours it.
func TestRunnerRestartKeepsSnooze(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := time.Now().Add(5 * day)
		p := legacyPlan()
		p.Deadline = d
		path := filepath.Join(t.TempDir(), "agent.json")
		pres := &fakePresenter{script: func(pr Prompt) (Choice, bool) {
			if pr.Kind == PromptReminder {
				return ChoiceRemindTomorrow, true
			}
			return "", false
		}}
		rep := &fakeReporter{}
		runFor(t, newTestRunner(t, &fakePlans{plan: p}, rep, pres, path), 3*time.Hour)

		offline := &fakePlans{err: errors.New("connection refused")}
		rep2 := &fakeReporter{}
		runFor(t, newTestRunner(t, offline, rep2, pres, path), 22*time.Hour)

		want := []shownAt{
			{-5 * day, PromptReminder}, // first process; Remind Tomorrow
			{-4 * day, PromptReminder}, // second process, a day later, not at its start
		}
		if got := pres.timeline(d); !slices.Equal(got, want) {
			t.Errorf("timeline:\n got %v\nwant %v", got, want)
		}
	})
}

func TestRunnerReplan(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		d := start.Add(5 * day)
		p := legacyPlan()
		p.Deadline = d
		plans := &fakePlans{plan: p}
		rep := &fakeReporter{}
		pres := &fakePresenter{script: func(pr Prompt) (Choice, bool) {
			if pr.Kind == PromptReminder {
				return ChoiceRemindTomorrow, true
			}
			return "", false
		}}
		go func() {
			// Three hours into a day-long snooze the admin pulls the
			// deadline in by two days.
			time.Sleep(3*time.Hour - 10*time.Minute)
			moved := p
			moved.Deadline = d.Add(-2 * day)
			plans.set(moved, nil)
		}()
		runFor(t, newTestRunner(t, plans, rep, pres, filepath.Join(t.TempDir(), "agent.json")), 5*time.Hour)

		var got []time.Duration
		for _, s := range pres.shown {
			got = append(got, s.at.Sub(start))
		}
		// The plan is polled every 15 minutes: the change made at 2h50m is
		// seen at 3h and the old snooze does not hold back the new reminder.
		if want := []time.Duration{0, 3 * time.Hour}; !slices.Equal(got, want) {
			t.Errorf("reminders at %v, want %v", got, want)
		}
		if n := len(rep.kinds(EventReplanned)); n != 1 {
			t.Errorf("%d replanned events, want 1", n)
		}
	})
}

func TestRunnerQuiet(t *testing.T) {
	tests := []struct {
		name string
		plan Plan
	}{
		{"compliant", func() Plan { p := legacyPlan(); p.Compliant = true; return p }()},
		{"unmanaged", func() Plan { p := legacyPlan(); p.Managed = false; return p }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := tt.plan
				p.Deadline = time.Now().Add(2 * day)
				rep := &fakeReporter{}
				pres := &fakePresenter{script: func(Prompt) (Choice, bool) { return "", false }}
				runFor(t, newTestRunner(t, &fakePlans{plan: p}, rep, pres, filepath.Join(t.TempDir(), "agent.json")), 7*day)
				if len(pres.shown) != 0 || len(rep.events) != 0 || len(pres.opened) != 0 {
					t.Errorf("shown %v, reported %v, opened %v; want nothing", pres.timeline(p.Deadline), rep.events, pres.opened)
				}
				for _, s := range pres.statuses {
					if s.Visible {
						t.Errorf("menu status %+v, want hidden", s)
					}
				}
			})
		})
	}
}

// TestRunnerReportRetry: events survive a server outage and arrive in order.
func TestRunnerReportRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := time.Now().Add(5 * day)
		p := legacyPlan()
		p.Deadline = d
		rep := &fakeReporter{failures: 3}
		pres := &fakePresenter{script: func(pr Prompt) (Choice, bool) { return ChoiceRemindHour, pr.Kind == PromptReminder }}
		runFor(t, newTestRunner(t, &fakePlans{plan: p}, rep, pres, filepath.Join(t.TempDir(), "agent.json")), 10*time.Minute)
		got := eventKinds(rep.events)
		want := []EventKind{EventPromptShown, EventUserChoice}
		if !slices.Equal(got, want) {
			t.Errorf("reported %v, want %v", got, want)
		}
		if rep.calls != 4 {
			t.Errorf("%d report calls, want 3 failures and 1 success", rep.calls)
		}
	})
}

// TestRunnerWindowLost: a presenter that loses the countdown window without
// an answer does not make the runner reopen it in a tight loop.
func TestRunnerWindowLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := time.Now()
		p := legacyPlan()
		p.Deadline = d
		pres := &fakePresenter{script: func(Prompt) (Choice, bool) { return "", false }}
		lossy := &closingPresenter{fakePresenter: pres}
		r := NewRunner(SystemClock{}, &fakePlans{plan: p}, &fakeReporter{}, lossy,
			NewFileStore(filepath.Join(t.TempDir(), "agent.json"), slog.New(slog.DiscardHandler)))
		runFor(t, r, 10*time.Minute)
		// One attempt per retry interval (1 minute), starting at D.
		if n := len(pres.shown); n < 10 || n > 11 {
			t.Errorf("countdown presented %d times in 10 minutes, want one per minute", n)
		}
	})
}

// closingPresenter closes every prompt at once without an answer.
type closingPresenter struct{ *fakePresenter }

func (c *closingPresenter) Present(ctx context.Context, p Prompt) (<-chan Choice, error) {
	if _, err := c.fakePresenter.Present(ctx, p); err != nil {
		return nil, err
	}
	ch := make(chan Choice)
	close(ch)
	return ch, nil
}

func TestStepWithoutRun(t *testing.T) {
	p := legacyPlan()
	pres := &fakePresenter{script: func(Prompt) (Choice, bool) { return "", false }}
	r := newTestRunner(t, &fakePlans{plan: p}, &fakeReporter{}, pres, filepath.Join(t.TempDir(), "agent.json"))
	next, err := r.Step(t.Context(), deadline.Add(-6*day))
	if err != nil {
		t.Fatal(err)
	}
	if want := deadline.Add(-6*day + 15*time.Minute); !next.Equal(want) {
		t.Errorf("next = %v, want the plan poll at %v", next, want)
	}
	if len(pres.shown) != 0 {
		t.Errorf("shown %d prompts at D-6d", len(pres.shown))
	}
	if _, err := r.Step(t.Context(), deadline.Add(-5*day)); err != nil {
		t.Fatal(err)
	}
	if len(pres.shown) != 1 || pres.shown[0].prompt.Kind != PromptReminder || !pres.shown[0].prompt.At.Equal(deadline.Add(-5*day)) {
		t.Errorf("shown = %+v, want one reminder made at D-5d", pres.shown)
	}
}

func BenchmarkStep(b *testing.B) {
	p := legacyPlan()
	pres := &fakePresenter{script: func(Prompt) (Choice, bool) { return "", false }}
	r := NewRunner(SystemClock{}, &fakePlans{plan: p}, &fakeReporter{}, pres,
		NewFileStore(filepath.Join(b.TempDir(), "agent.json"), slog.New(slog.DiscardHandler)))
	now := deadline.Add(-2 * day)
	if _, err := r.Step(b.Context(), now); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		now = now.Add(time.Second)
		if _, err := r.Step(b.Context(), now); err != nil {
			b.Fatal(err)
		}
	}
}
