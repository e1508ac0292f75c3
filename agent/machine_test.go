package agent

import (
	"errors"
	"slices"
	"testing"
	"time"
)

var deadline = time.Date(2026, time.June, 12, 15, 0, 0, 0, time.UTC)

func legacyPlan() Plan {
	return Plan{
		TargetVersion: "15.4",
		TargetBuild:   "24E248",
		Deadline:      deadline,
		Phase:         "notify",
		DetailsURL:    "https://support.apple.com/en-us/122868",
		Path:          PathLegacy,
		Managed:       true,
	}
}

func declarativePlan() Plan {
	p := legacyPlan()
	p.Path = PathDeclarative
	return p
}

const day = 24 * time.Hour

func kinds(ps []Prompt) []PromptKind {
	var out []PromptKind
	for _, p := range ps {
		out = append(out, p.Kind)
	}
	return out
}

func eventKinds(es []Event) []EventKind {
	var out []EventKind
	for _, e := range es {
		out = append(out, e.Kind)
	}
	return out
}

func windowKind(d Decision) PromptKind {
	if d.Window == nil {
		return ""
	}
	return d.Window.Kind
}

func TestEvaluate(t *testing.T) {
	m := DefaultMachine()
	p := legacyPlan()
	key := p.Key()
	compliant := p
	compliant.Compliant = true
	unmanaged := p
	unmanaged.Managed = false

	tests := []struct {
		name        string
		plan        Plan
		state       State
		now         time.Time
		wantPrompts []PromptKind
		wantWindow  PromptKind
		wantEvents  []EventKind
		wantStatus  bool
		wantNext    time.Time
	}{
		{
			name:     "six days before: nothing",
			plan:     p,
			now:      deadline.Add(-6 * day),
			wantNext: deadline.Add(-5 * day),
		},
		{
			name:        "five days before: banner and menu dot",
			plan:        p,
			now:         deadline.Add(-5 * day),
			wantPrompts: []PromptKind{PromptReminder},
			wantStatus:  true,
			wantNext:    deadline.Add(-5*day + 4*time.Hour),
		},
		{
			name:       "snoozed: menu only until the snooze ends",
			plan:       p,
			state:      State{PlanKey: key, NextReminder: deadline.Add(-2 * day)},
			now:        deadline.Add(-3 * day),
			wantStatus: true,
			wantNext:   deadline.Add(-2 * day),
		},
		{
			name:       "deadline: countdown window of 30 minutes",
			plan:       p,
			state:      State{PlanKey: key, NextReminder: deadline},
			now:        deadline,
			wantWindow: PromptCountdown,
			wantStatus: true,
			wantNext:   deadline.Add(30 * time.Minute),
		},
		{
			name:        "countdown closed: restart banner when due",
			plan:        p,
			state:       State{PlanKey: key, CountdownClosedAt: deadline, NextRestartBanner: deadline.Add(5 * time.Minute)},
			now:         deadline.Add(5 * time.Minute),
			wantPrompts: []PromptKind{PromptRestartSoon},
			wantStatus:  true,
			wantNext:    deadline.Add(10 * time.Minute),
		},
		{
			name:        "countdown closed, agent asleep: one banner, next one aligned",
			plan:        p,
			state:       State{PlanKey: key, CountdownClosedAt: deadline, NextRestartBanner: deadline.Add(5 * time.Minute)},
			now:         deadline.Add(17 * time.Minute),
			wantPrompts: []PromptKind{PromptRestartSoon},
			wantStatus:  true,
			wantNext:    deadline.Add(20 * time.Minute),
		},
		{
			name:       "end of countdown: forced install",
			plan:       p,
			state:      State{PlanKey: key},
			now:        deadline.Add(30 * time.Minute),
			wantWindow: PromptInstallProgress,
			wantEvents: []EventKind{EventForcedInstall},
			wantStatus: true,
		},
		{
			name:       "after the forced install: no second event",
			plan:       p,
			state:      State{PlanKey: key, ForcedAt: deadline.Add(30 * time.Minute)},
			now:        deadline.Add(2 * time.Hour),
			wantWindow: PromptInstallProgress,
			wantStatus: true,
		},
		{
			name:       "install requested: progress instead of prompts",
			plan:       p,
			state:      State{PlanKey: key, InstallRequestedAt: deadline.Add(-day)},
			now:        deadline.Add(-day + time.Hour),
			wantWindow: PromptInstallProgress,
			wantStatus: true,
			wantNext:   deadline.Add(-day + 2*time.Hour),
		},
		{
			name:        "install requested long ago and still not compliant: prompts resume",
			plan:        p,
			state:       State{PlanKey: key, InstallRequestedAt: deadline.Add(-3 * day), NextReminder: deadline.Add(-3 * day)},
			now:         deadline.Add(-day),
			wantPrompts: []PromptKind{PromptReminder},
			wantStatus:  true,
			wantNext:    deadline.Add(-day + 4*time.Hour),
		},
		{
			name:  "compliant: nothing",
			plan:  compliant,
			state: State{PlanKey: key},
			now:   deadline,
		},
		{
			name: "unmanaged: nothing",
			plan: unmanaged,
			now:  deadline.Add(time.Hour),
		},
		{
			name: "no plan yet: nothing",
			now:  deadline,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := m.Evaluate(tt.plan, tt.state, tt.now)
			if got := kinds(d.Prompts); !slices.Equal(got, tt.wantPrompts) {
				t.Errorf("prompts = %v, want %v", got, tt.wantPrompts)
			}
			if got := windowKind(d); got != tt.wantWindow {
				t.Errorf("window = %q, want %q", got, tt.wantWindow)
			}
			if got := eventKinds(d.Events); !slices.Equal(got, tt.wantEvents) {
				t.Errorf("events = %v, want %v", got, tt.wantEvents)
			}
			if d.Status.Visible != tt.wantStatus || d.Status.Alert != tt.wantStatus {
				t.Errorf("status = %+v, want visible and alert %v", d.Status, tt.wantStatus)
			}
			if !d.Next.Equal(tt.wantNext) {
				t.Errorf("next = %v, want %v", d.Next, tt.wantNext)
			}
		})
	}
}

func TestEvaluateWindowContents(t *testing.T) {
	m := DefaultMachine()
	p := legacyPlan()
	d := m.Evaluate(p, State{PlanKey: p.Key()}, deadline.Add(10*time.Minute))
	if d.Window == nil || d.Window.Kind != PromptCountdown {
		t.Fatalf("window = %+v, want countdown", d.Window)
	}
	w := *d.Window
	if want := deadline.Add(30 * time.Minute); !w.EndsAt.Equal(want) {
		t.Errorf("EndsAt = %v, want %v", w.EndsAt, want)
	}
	if w.Timeout != 20*time.Minute {
		t.Errorf("Timeout = %v, want 20m", w.Timeout)
	}
	if w.Title != "Your Mac will restart in 20 minutes" {
		t.Errorf("Title = %q", w.Title)
	}
	if !w.Has(ChoiceStartNow) || !w.Has(ChoiceClose) {
		t.Errorf("buttons = %+v, want Start Now and Close", w.Buttons)
	}

	d = m.Evaluate(p, State{}, deadline.Add(-5*day))
	r := d.Prompts[0]
	wantLabels := []string{"Learn More", "Remind in 1 hour", "Remind Tomorrow"}
	var labels []string
	for _, b := range r.Buttons {
		labels = append(labels, b.Label)
	}
	if !slices.Equal(labels, wantLabels) {
		t.Errorf("reminder buttons = %v, want %v", labels, wantLabels)
	}
	if d.Status.Title != "macOS 15.4 (24E248)" {
		t.Errorf("status title = %q", d.Status.Title)
	}
}

func TestChoose(t *testing.T) {
	m := DefaultMachine()
	p := legacyPlan()
	key := p.Key()
	reminderAt := func(now time.Time) Prompt { return m.reminder(p, now) }

	tests := []struct {
		name       string
		plan       Plan
		state      State
		prompt     func(now time.Time) Prompt
		choice     Choice
		now        time.Time
		wantState  State
		wantEvents []EventKind
		wantOpen   string
		wantWindow PromptKind
		wantPrompt []PromptKind
		wantErr    error
	}{
		{
			name:       "remind in 1 hour",
			plan:       p,
			state:      State{PlanKey: key, NextReminder: deadline.Add(-5*day + 4*time.Hour)},
			prompt:     reminderAt,
			choice:     ChoiceRemindHour,
			now:        deadline.Add(-5 * day),
			wantState:  State{PlanKey: key, NextReminder: deadline.Add(-5*day + time.Hour)},
			wantEvents: []EventKind{EventUserChoice},
		},
		{
			name:       "remind tomorrow",
			plan:       p,
			state:      State{PlanKey: key},
			prompt:     reminderAt,
			choice:     ChoiceRemindTomorrow,
			now:        deadline.Add(-3 * day),
			wantState:  State{PlanKey: key, NextReminder: deadline.Add(-2 * day)},
			wantEvents: []EventKind{EventUserChoice},
		},
		{
			name:       "remind tomorrow never runs past the deadline",
			plan:       p,
			state:      State{PlanKey: key},
			prompt:     reminderAt,
			choice:     ChoiceRemindTomorrow,
			now:        deadline.Add(-10 * time.Hour),
			wantState:  State{PlanKey: key, NextReminder: deadline},
			wantEvents: []EventKind{EventUserChoice},
		},
		{
			name:       "learn more opens update info",
			plan:       p,
			state:      State{PlanKey: key, NextReminder: deadline.Add(-4 * day)},
			prompt:     reminderAt,
			choice:     ChoiceLearnMore,
			now:        deadline.Add(-5 * day),
			wantState:  State{PlanKey: key, NextReminder: deadline.Add(-4 * day)},
			wantEvents: []EventKind{EventUserChoice},
			wantPrompt: []PromptKind{PromptUpdateInfo},
		},
		{
			name:       "start now on the legacy path asks the server",
			plan:       p,
			state:      State{PlanKey: key, NextReminder: deadline.Add(-4 * day)},
			prompt:     func(now time.Time) Prompt { return m.updateInfo(p, now) },
			choice:     ChoiceStartNow,
			now:        deadline.Add(-5 * day),
			wantState:  State{PlanKey: key, NextReminder: deadline.Add(-4 * day), InstallRequestedAt: deadline.Add(-5 * day)},
			wantEvents: []EventKind{EventUserChoice, EventInstallRequested},
			wantWindow: PromptInstallProgress,
		},
		{
			name:       "start now twice: one install request",
			plan:       p,
			state:      State{PlanKey: key, InstallRequestedAt: deadline.Add(-5 * day)},
			prompt:     func(now time.Time) Prompt { return m.updateInfo(p, now) },
			choice:     ChoiceStartNow,
			now:        deadline.Add(-5*day + time.Minute),
			wantState:  State{PlanKey: key, InstallRequestedAt: deadline.Add(-5 * day)},
			wantEvents: []EventKind{EventUserChoice},
			wantWindow: PromptInstallProgress,
		},
		{
			name:       "start now on the declarative path opens Software Update",
			plan:       declarativePlan(),
			state:      State{PlanKey: key},
			prompt:     func(now time.Time) Prompt { return m.countdown(declarativePlan(), now, deadline.Add(30*time.Minute)) },
			choice:     ChoiceStartNow,
			now:        deadline.Add(time.Minute),
			wantState:  State{PlanKey: key, InstallRequestedAt: deadline.Add(time.Minute)},
			wantEvents: []EventKind{EventUserChoice, EventInstallRequested},
			wantOpen:   SoftwareUpdateURL,
			wantWindow: PromptInstallProgress,
		},
		{
			name:       "details opens the details page",
			plan:       p,
			state:      State{PlanKey: key, NextReminder: deadline},
			prompt:     func(now time.Time) Prompt { return m.updateInfo(p, now) },
			choice:     ChoiceDetails,
			now:        deadline.Add(-day),
			wantState:  State{PlanKey: key, NextReminder: deadline},
			wantEvents: []EventKind{EventUserChoice},
			wantOpen:   p.DetailsURL,
		},
		{
			name:       "closing the countdown schedules restart banners",
			plan:       p,
			state:      State{PlanKey: key},
			prompt:     func(now time.Time) Prompt { return m.countdown(p, now, deadline.Add(30*time.Minute)) },
			choice:     ChoiceClose,
			now:        deadline.Add(2 * time.Minute),
			wantState:  State{PlanKey: key, CountdownClosedAt: deadline.Add(2 * time.Minute), NextRestartBanner: deadline.Add(7 * time.Minute)},
			wantEvents: []EventKind{EventUserChoice},
		},
		{
			name:       "reopen timer brings the countdown back",
			plan:       p,
			state:      State{PlanKey: key, CountdownClosedAt: deadline, NextRestartBanner: deadline.Add(10 * time.Minute)},
			prompt:     func(now time.Time) Prompt { return m.restartSoon(p, now, deadline.Add(30*time.Minute)) },
			choice:     ChoiceReopenTimer,
			now:        deadline.Add(5 * time.Minute),
			wantState:  State{PlanKey: key},
			wantEvents: []EventKind{EventUserChoice},
			wantWindow: PromptCountdown,
		},
		{
			name:       "timeout changes nothing and reports nothing",
			plan:       p,
			state:      State{PlanKey: key, NextReminder: deadline.Add(-4 * day)},
			prompt:     reminderAt,
			choice:     ChoiceTimeout,
			now:        deadline.Add(-5 * day),
			wantState:  State{PlanKey: key, NextReminder: deadline.Add(-4 * day)},
			wantEvents: nil,
		},
		{
			name:      "answer to an older plan is ignored",
			plan:      p,
			state:     State{PlanKey: key, NextReminder: deadline.Add(-4 * day)},
			prompt:    func(now time.Time) Prompt { pr := reminderAt(now); pr.PlanKey = "14.7||old"; return pr },
			choice:    ChoiceRemindTomorrow,
			now:       deadline.Add(-5 * day),
			wantState: State{PlanKey: key, NextReminder: deadline.Add(-4 * day)},
			wantErr:   ErrStaleAnswer,
		},
		{
			name:      "a choice the prompt did not offer is ignored",
			plan:      p,
			state:     State{PlanKey: key, NextReminder: deadline.Add(-4 * day)},
			prompt:    reminderAt,
			choice:    ChoiceStartNow,
			now:       deadline.Add(-5 * day),
			wantState: State{PlanKey: key, NextReminder: deadline.Add(-4 * day)},
			wantErr:   ErrUnknownChoice,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := m.Choose(tt.plan, tt.state, tt.prompt(tt.now), tt.choice, tt.now)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if d.State != tt.wantState {
				t.Errorf("state = %+v\nwant    %+v", d.State, tt.wantState)
			}
			if got := eventKinds(d.Events); !slices.Equal(got, tt.wantEvents) {
				t.Errorf("events = %v, want %v", got, tt.wantEvents)
			}
			if d.Open != tt.wantOpen {
				t.Errorf("open = %q, want %q", d.Open, tt.wantOpen)
			}
			if got := windowKind(d); got != tt.wantWindow {
				t.Errorf("window = %q, want %q", got, tt.wantWindow)
			}
			if got := kinds(d.Prompts); !slices.Equal(got, tt.wantPrompt) {
				t.Errorf("prompts = %v, want %v", got, tt.wantPrompt)
			}
		})
	}
}

func TestReplan(t *testing.T) {
	m := DefaultMachine()
	old := legacyPlan()
	snoozed := State{PlanKey: old.Key(), NextReminder: deadline.Add(-2 * day)}
	now := deadline.Add(-3 * day)

	moved := old
	moved.Deadline = deadline.Add(-day)
	d := m.Evaluate(moved, snoozed, now)
	if got := eventKinds(d.Events); !slices.Equal(got, []EventKind{EventReplanned}) {
		t.Errorf("events = %v, want replanned", got)
	}
	if got := kinds(d.Prompts); !slices.Equal(got, []PromptKind{PromptReminder}) {
		t.Errorf("prompts = %v, want an immediate reminder: the old snooze does not carry over", got)
	}
	if d.State.PlanKey != moved.Key() {
		t.Errorf("state key = %q, want %q", d.State.PlanKey, moved.Key())
	}

	later := old
	later.TargetVersion = "15.5"
	later.Deadline = deadline.Add(10 * day)
	d = m.Evaluate(later, snoozed, now)
	if len(d.Prompts) != 0 || d.Status.Visible {
		t.Errorf("new target far away: prompts %v status %+v, want nothing", kinds(d.Prompts), d.Status)
	}
	if want := later.Deadline.Add(-5 * day); !d.Next.Equal(want) {
		t.Errorf("next = %v, want %v", d.Next, want)
	}

	compliant := old
	compliant.Compliant = true
	d = m.Evaluate(compliant, snoozed, now)
	if len(d.Events) != 0 || d.State != (State{}) {
		t.Errorf("compliant: events %v state %+v, want none and empty", eventKinds(d.Events), d.State)
	}
}

// TestStory walks the whole timeline through the pure machine: the runner
// tests repeat it with a real loop and a fake clock.
func TestStory(t *testing.T) {
	m := DefaultMachine()
	p := legacyPlan()
	var s State
	type shown struct {
		at   time.Time
		kind PromptKind
	}
	var got []shown
	var events []EventKind
	eval := func(now time.Time) Decision {
		d := m.Evaluate(p, s, now)
		s = d.State
		for _, pr := range d.Prompts {
			got = append(got, shown{now, pr.Kind})
		}
		events = append(events, eventKinds(d.Events)...)
		return d
	}
	choose := func(pr Prompt, c Choice, now time.Time) Decision {
		d, err := m.Choose(p, s, pr, c, now)
		if err != nil {
			t.Fatalf("choose %s at %v: %v", c, now, err)
		}
		s = d.State
		events = append(events, eventKinds(d.Events)...)
		return d
	}

	n := deadline.Add(-5 * day)
	if d := eval(deadline.Add(-6 * day)); !d.Next.Equal(n) {
		t.Fatalf("D-6d next = %v, want %v", d.Next, n)
	}
	d := eval(n)
	choose(d.Prompts[0], ChoiceRemindHour, n.Add(time.Second))
	if d := eval(n.Add(59 * time.Minute)); len(d.Prompts) != 0 {
		t.Fatalf("banner before the hour is up")
	}
	d = eval(n.Add(time.Second + time.Hour))
	if len(d.Prompts) != 1 {
		t.Fatalf("no banner an hour after Remind in 1 hour")
	}
	choose(d.Prompts[0], ChoiceRemindTomorrow, n.Add(time.Hour+time.Second))
	if !s.NextReminder.Equal(n.Add(25*time.Hour + time.Second)) {
		t.Fatalf("next reminder = %v", s.NextReminder)
	}
	d = eval(deadline)
	if d.Window == nil || d.Window.Kind != PromptCountdown {
		t.Fatalf("no countdown at D")
	}
	choose(*d.Window, ChoiceClose, deadline)
	for k := 1; k <= 6; k++ {
		eval(deadline.Add(time.Duration(k) * 5 * time.Minute))
	}
	eval(deadline.Add(2 * time.Hour))

	want := []shown{
		{n, PromptReminder},
		{n.Add(time.Second + time.Hour), PromptReminder},
	}
	for k := 1; k <= 5; k++ {
		want = append(want, shown{deadline.Add(time.Duration(k) * 5 * time.Minute), PromptRestartSoon})
	}
	if !slices.Equal(got, want) {
		t.Errorf("shown:\n got %v\nwant %v", got, want)
	}
	wantEvents := []EventKind{EventUserChoice, EventUserChoice, EventUserChoice, EventForcedInstall}
	if !slices.Equal(events, wantEvents) {
		t.Errorf("events = %v, want %v", events, wantEvents)
	}
}

func TestHumanize(t *testing.T) {
	tests := []struct {
		have time.Duration
		want string
	}{
		{5 * day, "5 days"},
		{2 * day, "2 days"},
		{47 * time.Hour, "47 hours"},
		{2 * time.Hour, "2 hours"},
		{119 * time.Minute, "119 minutes"},
		{30 * time.Minute, "30 minutes"},
		{29*time.Minute + time.Second, "30 minutes"},
		{time.Minute, "1 minute"},
		{time.Second, "1 minute"},
		{0, "now"},
	}
	for _, tt := range tests {
		if got := humanize(tt.have); got != tt.want {
			t.Errorf("humanize(%v) = %q, want %q", tt.have, got, tt.want)
		}
	}
}

func BenchmarkEvaluate(b *testing.B) {
	m := DefaultMachine()
	p := legacyPlan()
	s := State{PlanKey: p.Key(), CountdownClosedAt: deadline, NextRestartBanner: deadline.Add(5 * time.Minute)}
	now := deadline.Add(7 * time.Minute)
	for b.Loop() {
		_ = m.Evaluate(p, s, now)
	}
}

func BenchmarkEvaluateQuiet(b *testing.B) {
	m := DefaultMachine()
	p := legacyPlan()
	s := State{PlanKey: p.Key(), NextReminder: deadline.Add(-day)}
	now := deadline.Add(-2 * day)
	for b.Loop() {
		_ = m.Evaluate(p, s, now)
	}
}
