package terminal

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sundial-mdm/sundial/agent"
)

// syncBuffer is a bytes.Buffer safe for the presenter's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var at = time.Date(2026, time.June, 7, 15, 0, 0, 0, time.UTC)

func reminder() agent.Prompt {
	return agent.Prompt{
		Kind:    agent.PromptReminder,
		PlanKey: "15.4|24E248|2026-06-12T15:00:00Z",
		Title:   "macOS update required",
		Message: "macOS 15.4 (24E248) must be installed by Fri 12 Jun 15:00 UTC (in 5 days).",
		Buttons: []agent.Button{
			{Choice: agent.ChoiceLearnMore, Label: "Learn More"},
			{Choice: agent.ChoiceRemindHour, Label: "Remind in 1 hour"},
			{Choice: agent.ChoiceRemindTomorrow, Label: "Remind Tomorrow"},
		},
		Default: agent.ChoiceLearnMore,
		At:      at,
	}
}

func TestParseChoice(t *testing.T) {
	tests := []struct {
		have    string
		want    agent.Choice
		wantErr string
	}{
		{"1", agent.ChoiceLearnMore, ""},
		{" 3 ", agent.ChoiceRemindTomorrow, ""},
		{"remind in 1 HOUR", agent.ChoiceRemindHour, ""},
		{"remind_tomorrow", agent.ChoiceRemindTomorrow, ""},
		{"x", agent.ChoiceDismiss, ""},
		{"dismiss", agent.ChoiceDismiss, ""},
		{"0", "", "no button 0"},
		{"4", "", "no button 4"},
		{"start_now", "", "unknown choice"},
		{"", "", "unknown choice"},
	}
	for _, tt := range tests {
		got, err := ParseChoice(reminder(), tt.have)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseChoice(%q) err = %v, want %q", tt.have, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseChoice(%q) = %q, %v; want %q", tt.have, got, err, tt.want)
		}
	}
}

func TestPresenter(t *testing.T) {
	tests := []struct {
		name       string
		typed      string
		want       agent.Choice
		wantOutput []string
	}{
		{"by number", "2\n", agent.ChoiceRemindHour, []string{"[#1] -> Remind in 1 hour"}},
		{"by label", "Remind Tomorrow\n", agent.ChoiceRemindTomorrow, []string{"[#1] -> Remind Tomorrow"}},
		{"by prompt and number", "1:1\n", agent.ChoiceLearnMore, []string{"[#1] -> Learn More"}},
		{"after a typo", "7\n\nlearn more\n", agent.ChoiceLearnMore, []string{"? no button 7: choose 1 to 3", "[#1] -> Learn More"}},
		{"dismissed", "x\n", agent.ChoiceDismiss, []string{"[#1] -> dismiss"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, typing := io.Pipe()
			defer typing.Close()
			var out syncBuffer
			p := New(&out, in)
			ch, err := p.Present(t.Context(), reminder())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.WriteString(typing, tt.typed); err != nil {
				t.Fatal(err)
			}
			got, ok := <-ch
			if !ok || got != tt.want {
				t.Fatalf("choice = %q, %v; want %q", got, ok, tt.want)
			}
			if _, open := <-ch; open {
				t.Errorf("channel still open after the answer")
			}
			text := out.String()
			wantPrompt := "2026-06-07 15:00:00 [reminder #1] macOS update required\n" +
				"    macOS 15.4 (24E248) must be installed by Fri 12 Jun 15:00 UTC (in 5 days).\n" +
				"    1) Learn More  2) Remind in 1 hour  3) Remind Tomorrow \n"
			if !strings.HasPrefix(text, wantPrompt) {
				t.Errorf("output starts %q\nwant %q", text, wantPrompt)
			}
			for _, w := range tt.wantOutput {
				if !strings.Contains(text, w) {
					t.Errorf("output %q lacks %q", text, w)
				}
			}
		})
	}
}

func TestPresenterCancel(t *testing.T) {
	var out syncBuffer
	p := New(&out, strings.NewReader(""))
	ctx, cancel := context.WithCancel(t.Context())
	ch, err := p.Present(ctx, reminder())
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if c, ok := <-ch; ok {
		t.Fatalf("cancelled prompt answered %q", c)
	}
	// The close is printed by the goroutine that saw the cancel.
	for !strings.Contains(out.String(), "[closed #1]") {
		time.Sleep(time.Millisecond)
	}
}

func TestPresenterTwoPrompts(t *testing.T) {
	in, typing := io.Pipe()
	defer typing.Close()
	var out syncBuffer
	p := New(&out, in)
	progress := agent.Prompt{Kind: agent.PromptInstallProgress, Title: "Installing", Buttons: []agent.Button{{Choice: agent.ChoiceDismiss, Label: "Hide"}}, At: at}
	first, _ := p.Present(t.Context(), progress)
	second, _ := p.Present(t.Context(), reminder())
	io.WriteString(typing, "1:hide\n")
	if c := <-first; c != agent.ChoiceDismiss {
		t.Errorf("first prompt got %q, want dismiss", c)
	}
	io.WriteString(typing, "3\n")
	if c := <-second; c != agent.ChoiceRemindTomorrow {
		t.Errorf("second prompt got %q, want remind_tomorrow", c)
	}
	io.WriteString(typing, "1\n")
	for !strings.Contains(out.String(), "? no open prompt") {
		time.Sleep(time.Millisecond)
	}
}

func TestStatusAndOpen(t *testing.T) {
	tests := []struct {
		have agent.Status
		want string
	}{
		{agent.Status{}, "[menu] (hidden)\n"},
		{agent.Status{Visible: true, Alert: true, Title: "macOS 15.4 (24E248)", Detail: "Required by Fri 12 Jun 15:00 UTC"}, "[menu] \u25cf macOS 15.4 (24E248): Required by Fri 12 Jun 15:00 UTC\n"},
		{agent.Status{Visible: true, Title: "macOS\x1b[2J 15.4", Detail: "x\ny"}, "[menu] macOS [2J 15.4: x y\n"},
	}
	for _, tt := range tests {
		var out syncBuffer
		p := New(&out, strings.NewReader(""))
		if err := p.SetStatus(t.Context(), tt.have); err != nil {
			t.Fatal(err)
		}
		if got := out.String(); got != tt.want {
			t.Errorf("SetStatus(%+v) wrote %q, want %q", tt.have, got, tt.want)
		}
	}
	var out syncBuffer
	p := New(&out, strings.NewReader(""))
	if err := p.Open(t.Context(), agent.SoftwareUpdateURL); err != nil {
		t.Fatal(err)
	}
	if want := "[open] " + agent.SoftwareUpdateURL + "\n"; out.String() != want {
		t.Errorf("Open wrote %q, want %q", out.String(), want)
	}
}

type staticPlan struct{ plan agent.Plan }

func (s staticPlan) Plan(context.Context) (agent.Plan, error) { return s.plan, nil }

type nopReporter struct{}

func (nopReporter) Report(context.Context, []agent.Event) error { return nil }

// TestDemo drives the real runner with the terminal presenter through the
// last minutes before a deadline, typing answers like a user would.
func TestDemo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		deadline := start.Add(2 * time.Hour)
		plan := agent.Plan{TargetVersion: "15.4", TargetBuild: "24E248", Deadline: deadline, Path: agent.PathLegacy, Managed: true}
		in, typing := io.Pipe()
		var out syncBuffer
		pres := New(&out, in)
		store := agent.NewFileStore(filepath.Join(t.TempDir(), "agent.json"), slog.New(slog.DiscardHandler))
		r := agent.NewRunner(agent.SystemClock{}, staticPlan{plan}, nopReporter{}, pres, store)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()

		synctest.Wait()
		io.WriteString(typing, "2\n") // Remind in 1 hour
		time.Sleep(2*time.Hour + time.Second)
		synctest.Wait()
		io.WriteString(typing, "close\n") // close the countdown
		time.Sleep(6 * time.Minute)
		synctest.Wait()
		io.WriteString(typing, "1\n") // Reopen Timer
		time.Sleep(25 * time.Minute)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		typing.Close()
		synctest.Wait()

		text := out.String()
		for _, want := range []string{
			"[reminder #1] macOS update required",
			"[#1] -> Remind in 1 hour",
			"[reminder #2]",  // an hour later
			"[#2] timed out", // at the deadline
			"[countdown #3] Your Mac will restart in 30 minutes",
			"[#3] -> Close",
			"[restart_soon #4] Your Mac will restart soon",
			"[#4] -> Reopen Timer",
			"[countdown #5] Your Mac will restart in 24 minutes",
			"[install_progress #6] Installing macOS 15.4 (24E248)",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("transcript lacks %q:\n%s", want, text)
			}
		}
	})
}

func FuzzParseChoice(f *testing.F) {
	for _, s := range []string{"1", "3", "Remind Tomorrow", "x", "remind_hour", "-1", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pr := reminder()
		c, err := ParseChoice(pr, s)
		if err != nil {
			return
		}
		if c != agent.ChoiceDismiss && !pr.Has(c) {
			t.Fatalf("ParseChoice(%q) = %q, not a button of the prompt", s, c)
		}
	})
}

func TestPresenterTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		in, typing := io.Pipe()
		var out syncBuffer
		p := New(&out, in)
		pr := reminder()
		pr.Timeout = 4 * time.Hour
		start := time.Now()
		ch, err := p.Present(t.Context(), pr)
		if err != nil {
			t.Fatal(err)
		}
		c := <-ch
		if c != agent.ChoiceTimeout {
			t.Errorf("choice = %q, want timeout", c)
		}
		if waited := time.Since(start); waited != 4*time.Hour {
			t.Errorf("timed out after %v, want 4h", waited)
		}
		if !strings.Contains(out.String(), "[#1] timed out") {
			t.Errorf("output %q lacks the timeout", out.String())
		}
		typing.Close()
		synctest.Wait()
	})
}
