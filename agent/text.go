package agent

import (
	"fmt"
	"time"
)

func updateName(p Plan) string {
	if p.TargetBuild != "" {
		return fmt.Sprintf("macOS %s (%s)", p.TargetVersion, p.TargetBuild)
	}
	return "macOS " + p.TargetVersion
}

// formatWhen renders t in the location of now, the user's local time.
func formatWhen(t, now time.Time) string {
	return t.In(now.Location()).Format("Mon 2 Jan 15:04 MST")
}

func formatClock(t, now time.Time) string {
	return t.In(now.Location()).Format("15:04 MST")
}

// humanize renders a positive duration as "5 days", "3 hours", "12 minutes",
// rounding up so a countdown never shows less time than is left.
func humanize(d time.Duration) string {
	unit := func(n int64, one, many string) string {
		if n == 1 {
			return "1 " + one
		}
		return fmt.Sprintf("%d %s", n, many)
	}
	ceil := func(d, u time.Duration) int64 { return int64((d + u - 1) / u) }
	switch {
	case d <= 0:
		return "now"
	case d >= 48*time.Hour:
		return unit(int64(d/(24*time.Hour)), "day", "days")
	case d >= 2*time.Hour:
		return unit(int64(d/time.Hour), "hour", "hours")
	default:
		return unit(ceil(d, time.Minute), "minute", "minutes")
	}
}

func (m Machine) reminder(p Plan, now time.Time) Prompt {
	left := p.Deadline.Sub(now)
	return Prompt{
		Kind:    PromptReminder,
		PlanKey: p.Key(),
		Title:   "macOS update required",
		Message: fmt.Sprintf("%s must be installed by %s (in %s). At the deadline your Mac installs it and restarts.",
			updateName(p), formatWhen(p.Deadline, now), humanize(left)),
		Buttons: []Button{
			{ChoiceLearnMore, "Learn More"},
			{ChoiceRemindHour, "Remind in 1 hour"},
			{ChoiceRemindTomorrow, "Remind Tomorrow"},
		},
		Default: ChoiceLearnMore,
		Timeout: min(m.Reminder, left),
		At:      now,
	}
}

func (m Machine) updateInfo(p Plan, now time.Time) Prompt {
	msg := fmt.Sprintf("%s is required on this Mac by %s (in %s). "+
		"Start Now closes open apps, installs the update and restarts your Mac; apps stay closed until the update finishes.",
		updateName(p), formatWhen(p.Deadline, now), humanize(p.Deadline.Sub(now)))
	buttons := []Button{{ChoiceStartNow, "Start Now"}}
	if p.DetailsURL != "" {
		buttons = append(buttons, Button{ChoiceDetails, "More Details"})
	}
	buttons = append(buttons, Button{ChoiceDismiss, "Later"})
	return Prompt{
		Kind:    PromptUpdateInfo,
		PlanKey: p.Key(),
		Title:   updateName(p),
		Message: msg,
		Buttons: buttons,
		Default: ChoiceDismiss,
		At:      now,
	}
}

func (m Machine) countdown(p Plan, now, end time.Time) Prompt {
	left := end.Sub(now)
	return Prompt{
		Kind:    PromptCountdown,
		PlanKey: p.Key(),
		Title:   "Your Mac will restart in " + humanize(left),
		Message: fmt.Sprintf("%s will be installed at %s. Save your work now, or choose Start Now to install it right away. Open apps will be closed.",
			updateName(p), formatClock(end, now)),
		Buttons: []Button{
			{ChoiceStartNow, "Start Now"},
			{ChoiceClose, "Close"},
		},
		Default: ChoiceClose,
		Timeout: left,
		EndsAt:  end,
		At:      now,
	}
}

func (m Machine) restartSoon(p Plan, now, end time.Time) Prompt {
	return Prompt{
		Kind:    PromptRestartSoon,
		PlanKey: p.Key(),
		Title:   "Your Mac will restart soon",
		Message: fmt.Sprintf("%s will be installed at %s (in %s). Save your work.",
			updateName(p), formatClock(end, now), humanize(end.Sub(now))),
		Buttons: []Button{
			{ChoiceReopenTimer, "Reopen Timer"},
			{ChoiceDismiss, "OK"},
		},
		Default: ChoiceReopenTimer,
		Timeout: m.RestartEvery,
		EndsAt:  end,
		At:      now,
	}
}

func (m Machine) progress(p Plan, s State, now time.Time) Prompt {
	var msg string
	switch {
	case !s.ForcedAt.IsZero():
		msg = fmt.Sprintf("The deadline has passed. %s is being installed and your Mac will restart.", updateName(p))
	case p.Declarative():
		msg = "Software Update is open in System Settings: follow it to install. Your Mac restarts when the update is ready."
	default:
		msg = "The update is being prepared. Your Mac restarts when it is ready; keep it connected to power."
	}
	return Prompt{
		Kind:    PromptInstallProgress,
		PlanKey: p.Key(),
		Title:   "Installing " + updateName(p),
		Message: msg,
		Buttons: []Button{{ChoiceDismiss, "Hide"}},
		Default: ChoiceDismiss,
		At:      now,
	}
}
