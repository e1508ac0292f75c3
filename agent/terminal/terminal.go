// Package terminal is an agent.Presenter for a terminal: it writes prompts
// as readable lines and reads the user's choices, one per line. It is the
// presenter on Linux, in development and in the demo.
//
// A choice is the number of a button, its label or its choice name
// ("2", "remind in 1 hour", "remind_hour"), or "x" to dismiss. It answers
// the most recent open prompt unless prefixed with a prompt number and a
// colon ("3:1").
package terminal

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sundial-mdm/sundial/agent"
)

// maxLine bounds one input line.
const maxLine = 4096

// Presenter writes prompts to w and reads answers from r.
type Presenter struct {
	clock agent.Clock

	mu   sync.Mutex
	w    io.Writer
	seq  int
	open []*pending
}

type pending struct {
	id     int
	prompt agent.Prompt
	ch     chan agent.Choice
	done   bool
}

var _ agent.Presenter = (*Presenter)(nil)

// Option configures a Presenter.
type Option func(*Presenter)

// WithClock sets the clock that times prompts out; the default is
// agent.SystemClock.
func WithClock(c agent.Clock) Option { return func(p *Presenter) { p.clock = c } }

// New returns a presenter and starts reading answers from r until it ends.
func New(w io.Writer, r io.Reader, opts ...Option) *Presenter {
	p := &Presenter{w: w, clock: agent.SystemClock{}}
	for _, o := range opts {
		o(p)
	}
	go p.read(r)
	return p
}

func (p *Presenter) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256), maxLine)
	for sc.Scan() {
		p.input(sc.Text())
	}
}

// Present prints the prompt and returns a channel for the answer typed by
// the user. A prompt with a Timeout answers agent.ChoiceTimeout when it runs
// out. When ctx is done the prompt is closed without an answer.
func (p *Presenter) Present(ctx context.Context, pr agent.Prompt) (<-chan agent.Choice, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	pd := &pending{id: p.seq, prompt: pr, ch: make(chan agent.Choice, 1)}
	var b strings.Builder
	fmt.Fprintf(&b, "%s [%s #%d] %s\n", pr.At.Format("2006-01-02 15:04:05"), pr.Kind, pd.id, oneLine(pr.Title))
	if pr.Message != "" {
		fmt.Fprintf(&b, "    %s\n", oneLine(pr.Message))
	}
	if !pr.EndsAt.IsZero() {
		fmt.Fprintf(&b, "    ends at %s\n", pr.EndsAt.In(pr.At.Location()).Format("15:04:05"))
	}
	if len(pr.Buttons) > 0 {
		b.WriteString("   ")
		for i, btn := range pr.Buttons {
			fmt.Fprintf(&b, " %d) %s ", i+1, oneLine(btn.Label))
		}
		b.WriteString("\n")
	}
	if _, err := io.WriteString(p.w, b.String()); err != nil {
		return nil, fmt.Errorf("present %s: %w", pr.Kind, err)
	}
	p.open = append(p.open, pd)
	var timeout <-chan time.Time
	if pr.Timeout > 0 {
		timeout = p.clock.After(pr.Timeout)
	}
	go func() {
		select {
		case <-ctx.Done():
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.finish(pd) {
				fmt.Fprintf(p.w, "[closed #%d]\n", pd.id)
			}
		case <-timeout:
			p.mu.Lock()
			defer p.mu.Unlock()
			if !pd.done {
				fmt.Fprintf(p.w, "[#%d] timed out\n", pd.id)
				pd.ch <- agent.ChoiceTimeout
				p.finish(pd)
			}
		}
	}()
	return pd.ch, nil
}

// SetStatus prints the menu bar item.
func (p *Presenter) SetStatus(_ context.Context, s agent.Status) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var line string
	switch {
	case !s.Visible:
		line = "[menu] (hidden)\n"
	case s.Alert:
		line = fmt.Sprintf("[menu] \u25cf %s: %s\n", oneLine(s.Title), oneLine(s.Detail))
	default:
		line = fmt.Sprintf("[menu] %s: %s\n", oneLine(s.Title), oneLine(s.Detail))
	}
	if _, err := io.WriteString(p.w, line); err != nil {
		return fmt.Errorf("set status: %w", err)
	}
	return nil
}

// Open prints the URL the agent would open.
func (p *Presenter) Open(_ context.Context, url string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := fmt.Fprintf(p.w, "[open] %s\n", oneLine(url)); err != nil {
		return fmt.Errorf("open: %w", err)
	}
	return nil
}

func (p *Presenter) input(line string) {
	line = strings.TrimSpace(line)
	if line == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	target, rest, err := p.target(line)
	if err == nil {
		var c agent.Choice
		c, err = ParseChoice(target.prompt, rest)
		if err == nil {
			label := target.prompt.Label(c)
			if label == "" {
				label = string(c)
			}
			// The answer is printed before it is delivered: whoever
			// receives it sees the output complete.
			fmt.Fprintf(p.w, "[#%d] -> %s\n", target.id, label)
			target.ch <- c
			p.finish(target)
			return
		}
	}
	fmt.Fprintf(p.w, "? %v\n", err)
}

// target picks the prompt a line answers: "N:choice" or the latest one.
func (p *Presenter) target(line string) (*pending, string, error) {
	if len(p.open) == 0 {
		return nil, "", errors.New("no open prompt")
	}
	if n, rest, ok := strings.Cut(line, ":"); ok {
		if id, err := strconv.Atoi(strings.TrimSpace(n)); err == nil {
			for _, pd := range p.open {
				if pd.id == id {
					return pd, strings.TrimSpace(rest), nil
				}
			}
			return nil, "", fmt.Errorf("no open prompt #%d", id)
		}
	}
	return p.open[len(p.open)-1], line, nil
}

// finish removes pd from the open prompts and closes its channel; it
// reports whether pd was still open. The caller holds p.mu.
func (p *Presenter) finish(pd *pending) bool {
	if pd.done {
		return false
	}
	pd.done = true
	close(pd.ch)
	for i, o := range p.open {
		if o == pd {
			p.open = append(p.open[:i], p.open[i+1:]...)
			break
		}
	}
	return true
}

// ParseChoice reads one typed answer to pr: a button number, label or
// choice name, or "x" / "dismiss" to close the prompt.
func ParseChoice(pr agent.Prompt, s string) (agent.Choice, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > len(pr.Buttons) {
			return "", fmt.Errorf("no button %d: choose 1 to %d", n, len(pr.Buttons))
		}
		return pr.Buttons[n-1].Choice, nil
	}
	for _, b := range pr.Buttons {
		if strings.EqualFold(s, b.Label) || strings.EqualFold(s, string(b.Choice)) {
			return b.Choice, nil
		}
	}
	if strings.EqualFold(s, "x") || strings.EqualFold(s, string(agent.ChoiceDismiss)) {
		return agent.ChoiceDismiss, nil
	}
	return "", fmt.Errorf("unknown choice %q", oneLine(s))
}

// oneLine keeps server- or user-provided text on one line and free of
// terminal control sequences.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, s)
}
