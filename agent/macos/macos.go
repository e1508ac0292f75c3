// Package macos is an agent.Presenter built on osascript and open(1).
//
// Prompts with buttons become `display dialog` dialogs, prompts without
// buttons `display notification` banners. Every user-visible string is
// passed to a fixed script as an argument of its run handler
// (osascript -e <script> -- <args>), never spliced into script text, so
// nothing the server sends can change what the script does. URLs are
// opened with `open <url>`, again as an argument.
//
// osascript cannot draw a menu bar item; SetStatus only remembers the
// status for the agent's logs. A small Swift helper can replace this
// presenter behind the same interface.
package macos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sundial-mdm/sundial/agent"
)

// DialogScript shows a dialog. argv: title, message, timeout in seconds (0:
// none), default button label, button labels... It prints the label of the
// button pressed, or nothing when the dialog gave up or was cancelled.
const DialogScript = `on run argv
	set theTitle to item 1 of argv
	set theMessage to item 2 of argv
	set theTimeout to (item 3 of argv) as integer
	set theDefault to item 4 of argv
	set theButtons to items 5 thru -1 of argv
	try
		if theTimeout > 0 then
			set theReply to display dialog theMessage with title theTitle buttons theButtons default button theDefault with icon caution giving up after theTimeout
			if gave up of theReply then return ""
		else
			set theReply to display dialog theMessage with title theTitle buttons theButtons default button theDefault with icon caution
		end if
	on error number -128
		return ""
	end try
	return button returned of theReply
end run`

// NotificationScript posts a notification. argv: title, message.
const NotificationScript = `on run argv
	display notification (item 2 of argv) with title (item 1 of argv)
end run`

// maxButtons is the most buttons `display dialog` accepts.
const maxButtons = 3

// maxArg bounds each user-visible string handed to osascript.
const maxArg = 2000

// Runner runs a program and returns its standard output. The command line
// is name and args exactly; no shell is involved.
type Runner interface {
	Run(ctx context.Context, name string, args ...string) ([]byte, error)
}

// ExecRunner runs programs with os/exec; cancelling ctx kills the program,
// which takes its dialog down.
type ExecRunner struct{}

// Run runs name with args and returns its standard output.
func (ExecRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// Presenter shows prompts with osascript.
type Presenter struct {
	run Runner
	log *slog.Logger

	mu     sync.Mutex
	status agent.Status
}

var _ agent.Presenter = (*Presenter)(nil)

// New returns a presenter that runs its commands through run.
func New(run Runner, log *slog.Logger) *Presenter {
	if run == nil || log == nil {
		panic("macos: New with a nil dependency")
	}
	return &Presenter{run: run, log: log}
}

// Present shows the prompt. A dialog's answer arrives on the channel; a
// notification's channel closes when ctx is done.
func (p *Presenter) Present(ctx context.Context, pr agent.Prompt) (<-chan agent.Choice, error) {
	argv, err := Argv(pr)
	if err != nil {
		return nil, fmt.Errorf("present %s: %w", pr.Kind, err)
	}
	ch := make(chan agent.Choice, 1)
	go func() {
		defer close(ch)
		out, err := p.run.Run(ctx, argv[0], argv[1:]...)
		if ctx.Err() != nil {
			return // taken down by the agent
		}
		if err != nil {
			p.log.WarnContext(ctx, "osascript failed", "prompt", pr.Kind, "err", err)
			return
		}
		if len(pr.Buttons) == 0 {
			<-ctx.Done()
			return
		}
		c, err := ParseReply(pr, out)
		if err != nil {
			p.log.WarnContext(ctx, "unexpected osascript reply", "prompt", pr.Kind, "err", err)
			return
		}
		ch <- c
	}()
	return ch, nil
}

// SetStatus records the status; osascript has no menu bar item to show it.
func (p *Presenter) SetStatus(ctx context.Context, s agent.Status) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s != p.status {
		p.log.DebugContext(ctx, "menu status", "visible", s.Visible, "alert", s.Alert, "title", s.Title)
		p.status = s
	}
	return nil
}

// Open opens Software Update or an http(s) page with open(1).
func (p *Presenter) Open(ctx context.Context, u string) error {
	argv, err := OpenArgv(u)
	if err != nil {
		return err
	}
	if _, err := p.run.Run(ctx, argv[0], argv[1:]...); err != nil {
		return fmt.Errorf("open %s: %w", u, err)
	}
	return nil
}

// Argv is the command line that shows pr.
func Argv(pr agent.Prompt) ([]string, error) {
	title, message := clean(pr.Title), clean(pr.Message)
	if len(pr.Buttons) == 0 {
		return []string{"osascript", "-e", NotificationScript, "--", title, message}, nil
	}
	if len(pr.Buttons) > maxButtons {
		return nil, fmt.Errorf("%d buttons, a dialog takes at most %d", len(pr.Buttons), maxButtons)
	}
	labels := make([]string, 0, len(pr.Buttons))
	seen := make(map[string]bool)
	for _, b := range pr.Buttons {
		l := cleanLabel(b.Label)
		if l == "" || seen[l] {
			return nil, fmt.Errorf("button label %q is empty or repeated", b.Label)
		}
		seen[l] = true
		labels = append(labels, l)
	}
	def := cleanLabel(pr.Label(pr.Default))
	if def == "" {
		def = labels[len(labels)-1]
	}
	timeout := 0
	if pr.Timeout > 0 {
		timeout = int(math.Ceil(min(pr.Timeout, 24*time.Hour).Seconds()))
	}
	argv := []string{"osascript", "-e", DialogScript, "--", title, message, strconv.Itoa(timeout), def}
	return append(argv, labels...), nil
}

// ParseReply maps what DialogScript printed to the choice: a button label,
// or nothing when the dialog gave up.
func ParseReply(pr agent.Prompt, out []byte) (agent.Choice, error) {
	label := strings.TrimSuffix(strings.TrimSuffix(string(out), "\n"), "\r")
	if label == "" {
		return agent.ChoiceTimeout, nil
	}
	for _, b := range pr.Buttons {
		if cleanLabel(b.Label) == label {
			return b.Choice, nil
		}
	}
	if len(label) > 64 {
		label = label[:64] + "..."
	}
	return "", fmt.Errorf("reply %q is not a button of the %s prompt", label, pr.Kind)
}

// OpenArgv is the command line that opens u: Software Update or an http(s)
// URL. Anything else is refused, so a plan cannot make the agent open files
// or other applications.
func OpenArgv(u string) ([]string, error) {
	if u == agent.SoftwareUpdateURL {
		return []string{"open", u}, nil
	}
	parsed, err := url.Parse(u)
	if err != nil || (parsed.Scheme != "https" && parsed.Scheme != "http") || parsed.Host == "" {
		return nil, errors.New("open: only Software Update and http(s) URLs are opened")
	}
	return []string{"open", parsed.String()}, nil
}

// cleanLabel is clean on one line without surrounding spaces.
func cleanLabel(s string) string {
	return strings.TrimSpace(strings.ReplaceAll(clean(s), "\n", " "))
}

// clean bounds a string and removes control characters, which osascript
// would otherwise show verbatim.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\n' {
			return r
		}
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > maxArg {
		s = strings.ToValidUTF8(s[:maxArg], "")
	}
	return s
}
