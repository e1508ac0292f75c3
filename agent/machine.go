package agent

import (
	"errors"
	"fmt"
	"time"
)

// SoftwareUpdateURL opens Software Update in System Settings; Start Now opens
// it on the declarative path.
const SoftwareUpdateURL = "x-apple.systempreferences:com.apple.preferences.softwareupdate"

// Snooze lengths of the reminder buttons. They are fixed because the button
// labels name them.
const (
	SnoozeHour     = time.Hour
	SnoozeTomorrow = 24 * time.Hour
)

// Errors returned by Machine.Choose for answers it ignores.
var (
	// ErrStaleAnswer: the answer belongs to a prompt of an older plan.
	ErrStaleAnswer = errors.New("answer to a prompt of an older plan")
	// ErrUnknownChoice: the prompt offered no such button.
	ErrUnknownChoice = errors.New("choice not offered by the prompt")
)

// State is what the user decided, persisted across agent restarts. It
// belongs to one plan key: when the target or deadline changes the machine
// starts from a fresh State.
type State struct {
	// PlanKey is the Plan.Key the fields below belong to.
	PlanKey string `json:"plan_key,omitempty"`
	// NextReminder is when the next reminder banner is due; zero means
	// as soon as the notice window opens. Snoozes move it, never past D.
	NextReminder time.Time `json:"next_reminder,omitzero"`
	// CountdownClosedAt is when the user closed the countdown window; zero
	// while it is open or has not been shown.
	CountdownClosedAt time.Time `json:"countdown_closed_at,omitzero"`
	// NextRestartBanner is when the next "restart soon" banner is due
	// while the countdown window is closed.
	NextRestartBanner time.Time `json:"next_restart_banner,omitzero"`
	// InstallRequestedAt is when the user last chose Start Now.
	InstallRequestedAt time.Time `json:"install_requested_at,omitzero"`
	// ProgressHidden is true when the user hid the install progress view.
	ProgressHidden bool `json:"progress_hidden,omitempty"`
	// ForcedAt is when the forced install was emitted; set once per plan.
	ForcedAt time.Time `json:"forced_at,omitzero"`
}

// Decision is what the machine wants now.
type Decision struct {
	// State is the new user state to persist.
	State State
	// Status is the menu bar item to show.
	Status Status
	// Prompts are one-shot banners and windows to show now.
	Prompts []Prompt
	// Window is the persistent window (countdown or install progress) that
	// should be open now; nil when none should be.
	Window *Prompt
	// Open is a URL to open now (Software Update, the details page); empty
	// for none.
	Open string
	// Events are to be reported to the server.
	Events []Event
	// Next is when the machine wants to be evaluated again even if nothing
	// happens; zero when no time-driven change is ahead.
	Next time.Time
}

// Machine is the pure, clock-driven state machine of the agent. The zero
// value uses the defaults of DefaultMachine; all methods are pure.
type Machine struct {
	// Notice is how long before D the agent starts prompting (5 days).
	Notice time.Duration
	// Countdown is the length of the countdown window from D (30 minutes).
	Countdown time.Duration
	// RestartEvery is the interval of "restart soon" banners while the
	// countdown window is closed (5 minutes).
	RestartEvery time.Duration
	// Reminder is when an unanswered reminder banner comes back (4 hours).
	Reminder time.Duration
	// InstallGrace is how long after Start Now the agent shows install
	// progress instead of prompts (2 hours). If the Mac still is not
	// compliant afterwards, prompting resumes.
	InstallGrace time.Duration
}

// DefaultMachine returns the machine with the timings of SPEC.md §6.
func DefaultMachine() Machine {
	return Machine{
		Notice:       5 * 24 * time.Hour,
		Countdown:    30 * time.Minute,
		RestartEvery: 5 * time.Minute,
		Reminder:     4 * time.Hour,
		InstallGrace: 2 * time.Hour,
	}
}

func (m Machine) withDefaults() Machine {
	d := DefaultMachine()
	if m.Notice <= 0 {
		m.Notice = d.Notice
	}
	if m.Countdown <= 0 {
		m.Countdown = d.Countdown
	}
	if m.RestartEvery <= 0 {
		m.RestartEvery = d.RestartEvery
	}
	if m.Reminder <= 0 {
		m.Reminder = d.Reminder
	}
	if m.InstallGrace <= 0 {
		m.InstallGrace = d.InstallGrace
	}
	return m
}

// Evaluate says what to show at now for the plan and the user's state.
func (m Machine) Evaluate(p Plan, s State, now time.Time) Decision {
	m = m.withDefaults()
	var d Decision
	s, d.Events = rebase(p, s, now)
	m.evaluate(p, &s, now, &d)
	d.State = s
	return d
}

// Choose applies the user's answer to a prompt at now and says what to show
// next. An answer to a prompt of an older plan, or with a choice the prompt
// did not offer, changes nothing: Choose then returns the plain Evaluate
// decision and ErrStaleAnswer or ErrUnknownChoice.
func (m Machine) Choose(p Plan, s State, pr Prompt, c Choice, now time.Time) (Decision, error) {
	m = m.withDefaults()
	s, events := rebase(p, s, now)
	if !p.Active() || pr.PlanKey != s.PlanKey {
		d := m.Evaluate(p, s, now)
		d.Events = append(events, d.Events...)
		return d, ErrStaleAnswer
	}
	if c != ChoiceDismiss && c != ChoiceTimeout && !pr.Has(c) {
		d := m.Evaluate(p, s, now)
		d.Events = append(events, d.Events...)
		return d, fmt.Errorf("%w: %q on %s", ErrUnknownChoice, c, pr.Kind)
	}
	if c != ChoiceTimeout {
		e := newEvent(EventUserChoice, p, now)
		e.Prompt, e.Choice = pr.Kind, c
		events = append(events, e)
	}
	var prompts []Prompt
	var open string
	deadline := p.Deadline
	switch c {
	case ChoiceRemindHour, ChoiceRemindTomorrow:
		if now.Before(deadline) {
			snooze := SnoozeHour
			if c == ChoiceRemindTomorrow {
				snooze = SnoozeTomorrow
			}
			s.NextReminder = minTime(now.Add(snooze), deadline)
		}
	case ChoiceLearnMore:
		prompts = append(prompts, m.updateInfo(p, now))
	case ChoiceStartNow:
		switch {
		case !s.ForcedAt.IsZero():
			// The install is already being forced.
		case m.installing(s, now):
			// One request per grace period; on the declarative path
			// bring Software Update back in case it was closed.
			if p.Declarative() {
				open = SoftwareUpdateURL
			}
		default:
			s.InstallRequestedAt = now
			s.ProgressHidden = false
			events = append(events, newEvent(EventInstallRequested, p, now))
			if p.Declarative() {
				open = SoftwareUpdateURL
			}
		}
	case ChoiceDetails:
		open = p.DetailsURL
	case ChoiceClose, ChoiceDismiss:
		switch pr.Kind {
		case PromptCountdown:
			if s.CountdownClosedAt.IsZero() {
				s.CountdownClosedAt = now
				s.NextRestartBanner = now.Add(m.RestartEvery)
			}
		case PromptInstallProgress:
			s.ProgressHidden = true
		}
	case ChoiceReopenTimer:
		s.CountdownClosedAt = time.Time{}
		s.NextRestartBanner = time.Time{}
	}
	var d Decision
	m.evaluate(p, &s, now, &d)
	d.State = s
	d.Events = append(events, d.Events...)
	d.Prompts = append(prompts, d.Prompts...)
	d.Open = open
	return d, nil
}

// rebase drops the state of an older plan.
func rebase(p Plan, s State, now time.Time) (State, []Event) {
	key := p.Key()
	if key == s.PlanKey {
		return s, nil
	}
	var events []Event
	if s.PlanKey != "" && key != "" {
		events = append(events, newEvent(EventReplanned, p, now))
	}
	return State{PlanKey: key}, events
}

func (m Machine) installing(s State, now time.Time) bool {
	return !s.InstallRequestedAt.IsZero() && now.Before(s.InstallRequestedAt.Add(m.InstallGrace))
}

func (m Machine) evaluate(p Plan, s *State, now time.Time, d *Decision) {
	if !p.Active() {
		return
	}
	deadline := p.Deadline
	notice := deadline.Add(-m.Notice)
	end := deadline.Add(m.Countdown)
	if now.Before(notice) {
		d.Next = notice
		return
	}
	d.Status = Status{Visible: true, Alert: true, Title: updateName(p), Detail: "Required by " + formatWhen(deadline, now)}

	// Enforce: the countdown is over.
	if !now.Before(end) {
		if s.ForcedAt.IsZero() {
			s.ForcedAt = now
			d.Events = append(d.Events, newEvent(EventForcedInstall, p, now))
		}
		d.Status.Detail = "Installing now"
		if !s.ProgressHidden {
			w := m.progress(p, *s, now)
			d.Window = &w
		}
		return
	}

	// Start Now was chosen: show progress, not prompts.
	if m.installing(*s, now) {
		d.Status.Detail = "Installing"
		if !s.ProgressHidden {
			w := m.progress(p, *s, now)
			d.Window = &w
		}
		d.Next = minTime(s.InstallRequestedAt.Add(m.InstallGrace), end)
		return
	}

	// Countdown: from D to D + Countdown.
	if !now.Before(deadline) {
		d.Status.Detail = "Restart at " + formatClock(end, now)
		if s.CountdownClosedAt.IsZero() {
			w := m.countdown(p, now, end)
			d.Window = &w
			d.Next = end
			return
		}
		if s.NextRestartBanner.IsZero() {
			s.NextRestartBanner = s.CountdownClosedAt.Add(m.RestartEvery)
		}
		if !now.Before(s.NextRestartBanner) {
			d.Prompts = append(d.Prompts, m.restartSoon(p, now, end))
			missed := now.Sub(s.NextRestartBanner)/m.RestartEvery + 1
			s.NextRestartBanner = s.NextRestartBanner.Add(missed * m.RestartEvery)
		}
		d.Next = minTime(s.NextRestartBanner, end)
		return
	}

	// Notice: reminders until D.
	if !now.Before(s.NextReminder) {
		d.Prompts = append(d.Prompts, m.reminder(p, now))
		s.NextReminder = minTime(now.Add(m.Reminder), deadline)
	}
	d.Next = minTime(s.NextReminder, deadline)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
