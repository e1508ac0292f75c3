package macos

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/agent"
)

// fakeRunner records command lines and answers with a canned reply; with
// block set it waits for the context like a dialog nobody answers.
type fakeRunner struct {
	mu    sync.Mutex
	calls [][]string
	reply string
	err   error
	block bool
}

func (f *fakeRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	f.mu.Lock()
	f.calls = append(f.calls, append([]string{name}, args...))
	reply, err, block := f.reply, f.err, f.block
	f.mu.Unlock()
	if block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return []byte(reply), err
}

func reminder() agent.Prompt {
	return agent.Prompt{
		Kind:    agent.PromptReminder,
		Title:   "macOS update required",
		Message: "macOS 15.4 (24E248) must be installed by Fri 12 Jun 15:00 UTC (in 5 days).",
		Buttons: []agent.Button{
			{Choice: agent.ChoiceLearnMore, Label: "Learn More"},
			{Choice: agent.ChoiceRemindHour, Label: "Remind in 1 hour"},
			{Choice: agent.ChoiceRemindTomorrow, Label: "Remind Tomorrow"},
		},
		Default: agent.ChoiceLearnMore,
		Timeout: 4 * time.Hour,
	}
}

func TestArgv(t *testing.T) {
	hostile := `" & (do shell script "touch /tmp/pwned") & "`
	tests := []struct {
		name string
		have agent.Prompt
		want []string
	}{
		{
			name: "reminder dialog",
			have: reminder(),
			want: []string{"osascript", "-e", DialogScript, "--",
				"macOS update required",
				"macOS 15.4 (24E248) must be installed by Fri 12 Jun 15:00 UTC (in 5 days).",
				"14400", "Learn More",
				"Learn More", "Remind in 1 hour", "Remind Tomorrow"},
		},
		{
			name: "countdown rounds its timeout up",
			have: agent.Prompt{
				Kind: agent.PromptCountdown, Title: "Your Mac will restart in 30 minutes", Message: "Save your work.",
				Buttons: []agent.Button{{Choice: agent.ChoiceStartNow, Label: "Start Now"}, {Choice: agent.ChoiceClose, Label: "Close"}},
				Default: agent.ChoiceClose, Timeout: 29*time.Minute + 500*time.Millisecond,
			},
			want: []string{"osascript", "-e", DialogScript, "--",
				"Your Mac will restart in 30 minutes", "Save your work.", "1741", "Close", "Start Now", "Close"},
		},
		{
			name: "no timeout and no default",
			have: agent.Prompt{Kind: agent.PromptInstallProgress, Title: "Installing", Message: "Wait.", Buttons: []agent.Button{{Choice: agent.ChoiceDismiss, Label: "Hide"}}},
			want: []string{"osascript", "-e", DialogScript, "--", "Installing", "Wait.", "0", "Hide", "Hide"},
		},
		{
			name: "no buttons: a notification",
			have: agent.Prompt{Kind: agent.PromptRestartSoon, Title: "Restart soon", Message: "Save your work."},
			want: []string{"osascript", "-e", NotificationScript, "--", "Restart soon", "Save your work."},
		},
		{
			name: "hostile strings stay arguments",
			have: agent.Prompt{Kind: agent.PromptReminder, Title: hostile, Message: "-e\x00\x1b[31m", Buttons: []agent.Button{{Choice: agent.ChoiceDismiss, Label: hostile}}},
			want: []string{"osascript", "-e", DialogScript, "--", hostile, "-e  [31m", "0", hostile, hostile},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Argv(tt.have)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("argv:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestArgvRefuses(t *testing.T) {
	four := reminder()
	four.Buttons = append(four.Buttons, agent.Button{Choice: agent.ChoiceDismiss, Label: "Later"})
	same := reminder()
	same.Buttons[1].Label = "Learn More"
	empty := reminder()
	empty.Buttons[2].Label = "\x00"
	for name, pr := range map[string]agent.Prompt{"four buttons": four, "repeated label": same, "empty label": empty} {
		if argv, err := Argv(pr); err == nil {
			t.Errorf("%s: argv %q, want an error", name, argv)
		}
	}
}

func TestScriptsTakeArguments(t *testing.T) {
	for name, script := range map[string]string{"dialog": DialogScript, "notification": NotificationScript} {
		if !strings.HasPrefix(script, "on run argv\n") || !strings.HasSuffix(script, "\nend run") {
			t.Errorf("%s script is not a run handler over argv", name)
		}
	}
}

func TestParseReply(t *testing.T) {
	tests := []struct {
		have    string
		want    agent.Choice
		wantErr bool
	}{
		{"Remind Tomorrow\n", agent.ChoiceRemindTomorrow, false},
		{"Learn More\r\n", agent.ChoiceLearnMore, false},
		{"Remind in 1 hour", agent.ChoiceRemindHour, false},
		{"\n", agent.ChoiceTimeout, false},
		{"", agent.ChoiceTimeout, false},
		{"Start Now\n", "", true},
		{"remind tomorrow\n", "", true},
	}
	for _, tt := range tests {
		got, err := ParseReply(reminder(), []byte(tt.have))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseReply(%q) = %q, %v; want %q, error %v", tt.have, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestOpenArgv(t *testing.T) {
	tests := []struct {
		have    string
		want    []string
		wantErr bool
	}{
		{agent.SoftwareUpdateURL, []string{"open", agent.SoftwareUpdateURL}, false},
		{"https://support.apple.com/en-us/122868", []string{"open", "https://support.apple.com/en-us/122868"}, false},
		{"file:///Applications/Calculator.app", nil, true},
		{"x-apple.systempreferences:com.apple.preference.security", nil, true},
		{"-a Terminal", nil, true},
		{"https://", nil, true},
	}
	for _, tt := range tests {
		got, err := OpenArgv(tt.have)
		if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
			t.Errorf("OpenArgv(%q) = %q, %v; want %q, error %v", tt.have, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestPresenter(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	t.Run("answer", func(t *testing.T) {
		run := &fakeRunner{reply: "Remind in 1 hour\n"}
		p := New(run, log)
		ch, err := p.Present(t.Context(), reminder())
		if err != nil {
			t.Fatal(err)
		}
		if c, ok := <-ch; !ok || c != agent.ChoiceRemindHour {
			t.Errorf("choice = %q, %v; want remind_hour", c, ok)
		}
		want, _ := Argv(reminder())
		if len(run.calls) != 1 || !slices.Equal(run.calls[0], want) {
			t.Errorf("ran %q, want %q", run.calls, want)
		}
	})
	t.Run("taken down", func(t *testing.T) {
		p := New(&fakeRunner{block: true}, log)
		ctx, cancel := context.WithCancel(t.Context())
		ch, _ := p.Present(ctx, reminder())
		cancel()
		if c, ok := <-ch; ok {
			t.Errorf("cancelled dialog answered %q", c)
		}
	})
	t.Run("osascript fails", func(t *testing.T) {
		p := New(&fakeRunner{err: errors.New("exit status 1")}, log)
		ch, _ := p.Present(t.Context(), reminder())
		if c, ok := <-ch; ok {
			t.Errorf("failed dialog answered %q", c)
		}
	})
	t.Run("open", func(t *testing.T) {
		run := &fakeRunner{}
		p := New(run, log)
		if err := p.Open(t.Context(), agent.SoftwareUpdateURL); err != nil {
			t.Fatal(err)
		}
		if err := p.Open(t.Context(), "file:///etc/passwd"); err == nil {
			t.Error("opened a file URL")
		}
		if want := [][]string{{"open", agent.SoftwareUpdateURL}}; len(run.calls) != 1 || !slices.Equal(run.calls[0], want[0]) {
			t.Errorf("ran %q, want %q", run.calls, want)
		}
	})
}

func FuzzParseReply(f *testing.F) {
	for _, s := range []string{"Learn More\n", "", "\n", "Remind Tomorrow\r\n", "x\x00y"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, out []byte) {
		pr := reminder()
		c, err := ParseReply(pr, out)
		if err != nil {
			return
		}
		if c != agent.ChoiceTimeout && !pr.Has(c) {
			t.Fatalf("ParseReply(%q) = %q, not a button of the prompt", out, c)
		}
	})
}

func FuzzArgv(f *testing.F) {
	f.Add("title", "message", "Label")
	f.Add(`" & quit & "`, "-e", "--")
	f.Fuzz(func(t *testing.T, title, message, label string) {
		pr := agent.Prompt{Title: title, Message: message, Buttons: []agent.Button{{Choice: agent.ChoiceDismiss, Label: label}}}
		argv, err := Argv(pr)
		if err != nil {
			return
		}
		if argv[0] != "osascript" || argv[1] != "-e" || argv[2] != DialogScript || argv[3] != "--" {
			t.Fatalf("script or options changed by the prompt: %q", argv[:4])
		}
		if c, err := ParseReply(pr, []byte(argv[len(argv)-1]+"\n")); err != nil || c != agent.ChoiceDismiss {
			t.Fatalf("the button's own label does not parse back: %q %v", c, err)
		}
	})
}
