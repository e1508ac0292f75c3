package agent

import (
	"slices"
	"time"
)

// PromptKind names a thing the agent shows the user.
type PromptKind string

// Prompt kinds.
const (
	// PromptReminder is the banner shown from D-5 days with Learn More,
	// Remind in 1 hour and Remind Tomorrow.
	PromptReminder PromptKind = "reminder"
	// PromptUpdateInfo is the Update Info window with Start Now.
	PromptUpdateInfo PromptKind = "update_info"
	// PromptCountdown is the 30-minute countdown window shown at D.
	PromptCountdown PromptKind = "countdown"
	// PromptRestartSoon is the banner shown every few minutes while the
	// countdown window is closed, with Reopen Timer.
	PromptRestartSoon PromptKind = "restart_soon"
	// PromptInstallProgress is the Install in Progress view.
	PromptInstallProgress PromptKind = "install_progress"
)

// Window reports whether the kind is a persistent window the runner keeps
// open while the machine wants it, rather than a one-shot prompt.
func (k PromptKind) Window() bool {
	return k == PromptCountdown || k == PromptInstallProgress
}

// Choice is the user's answer to a prompt.
type Choice string

// Choices. A presenter returns the Choice of the button the user pressed,
// ChoiceDismiss when the user closed the prompt without pressing one, or
// ChoiceTimeout when the prompt went away by itself.
const (
	ChoiceLearnMore      Choice = "learn_more"
	ChoiceRemindHour     Choice = "remind_hour"
	ChoiceRemindTomorrow Choice = "remind_tomorrow"
	ChoiceStartNow       Choice = "start_now"
	ChoiceDetails        Choice = "details"
	ChoiceClose          Choice = "close"
	ChoiceReopenTimer    Choice = "reopen_timer"
	ChoiceDismiss        Choice = "dismiss"
	ChoiceTimeout        Choice = "timeout"
)

// Button is one button of a prompt.
type Button struct {
	Choice Choice `json:"choice"`
	Label  string `json:"label"`
}

// Prompt is a banner or window for a presenter to show. All text is
// produced by the machine, so every presenter says the same thing.
type Prompt struct {
	Kind PromptKind `json:"kind"`
	// PlanKey is the Plan.Key the prompt was made for; answers to prompts
	// of an older plan are ignored.
	PlanKey string `json:"plan_key"`
	Title   string `json:"title"`
	Message string `json:"message"`
	// Buttons in display order; may be empty for a plain notification.
	Buttons []Button `json:"buttons,omitempty"`
	// Default is the button taken on Return; empty when there are no
	// buttons.
	Default Choice `json:"default,omitempty"`
	// Timeout is how long a presenter may leave the prompt up before it
	// gives up with ChoiceTimeout; zero means no limit.
	Timeout time.Duration `json:"timeout,omitempty"`
	// EndsAt is the end of the countdown for PromptCountdown.
	EndsAt time.Time `json:"ends_at,omitzero"`
	// At is the instant the prompt was made.
	At time.Time `json:"at"`
}

// Has reports whether the prompt offers the choice as a button.
func (p Prompt) Has(c Choice) bool {
	return slices.ContainsFunc(p.Buttons, func(b Button) bool { return b.Choice == c })
}

// Label returns the label of the button for c, or "" when there is none.
func (p Prompt) Label(c Choice) string {
	for _, b := range p.Buttons {
		if b.Choice == c {
			return b.Label
		}
	}
	return ""
}

// Status is the menu bar item: hidden when Visible is false, with a red dot
// when Alert is true.
type Status struct {
	Visible bool   `json:"visible"`
	Alert   bool   `json:"alert"`
	Title   string `json:"title,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// EventKind names something the agent reports to the server.
type EventKind string

// Event kinds.
const (
	// EventPromptShown: a prompt was put in front of the user.
	EventPromptShown EventKind = "prompt_shown"
	// EventUserChoice: the user answered a prompt.
	EventUserChoice EventKind = "user_choice"
	// EventInstallRequested: the user chose Start Now. On the legacy path
	// the server answers with InstallASAP.
	EventInstallRequested EventKind = "install_requested"
	// EventForcedInstall: the countdown ran out; emitted once per plan.
	EventForcedInstall EventKind = "forced_install"
	// EventReplanned: the target or deadline changed and earlier choices
	// were dropped.
	EventReplanned EventKind = "replanned"
)

// Event is one fact for the server's device history.
type Event struct {
	Kind          EventKind  `json:"kind"`
	At            time.Time  `json:"at"`
	Prompt        PromptKind `json:"prompt,omitempty"`
	Choice        Choice     `json:"choice,omitempty"`
	TargetVersion string     `json:"target_version,omitempty"`
	TargetBuild   string     `json:"target_build,omitempty"`
	Deadline      time.Time  `json:"deadline,omitzero"`
	Path          string     `json:"path,omitempty"`
}

func newEvent(kind EventKind, p Plan, now time.Time) Event {
	return Event{
		Kind:          kind,
		At:            now,
		TargetVersion: p.TargetVersion,
		TargetBuild:   p.TargetBuild,
		Deadline:      p.Deadline,
		Path:          p.Path,
	}
}
