package mdmtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/micromdm/plist"
)

// Command statuses a device reports.
const (
	StatusAcknowledged       = "Acknowledged"
	StatusError              = "Error"
	StatusCommandFormatError = "CommandFormatError"
	StatusIdle               = "Idle"
	StatusNotNow             = "NotNow"
)

// ErrorChainItem is one entry of a report's ErrorChain.
type ErrorChainItem struct {
	ErrorCode            int
	ErrorDomain          string
	LocalizedDescription string
	USEnglishDescription string `plist:",omitempty"`
}

// ErrUnknownCommand is the error chain macOS returns for a RequestType it
// does not know.
var ErrUnknownCommand = []ErrorChainItem{{
	ErrorCode: 12021, ErrorDomain: "MCMDMErrorDomain",
	LocalizedDescription: "Unknown command", USEnglishDescription: "Unknown command",
}}

// Command is a command received on the command channel.
type Command struct {
	CommandUUID string
	RequestType string
	Payload     map[string]any // the Command dictionary
	Raw         []byte         // the whole plist as received
}

// Decode decodes the raw command plist into v, e.g. a struct with a Command field.
func (c *Command) Decode(v any) error { return plist.Unmarshal(c.Raw, v) }

// Result is a device's answer to a command, before the envelope keys
// (UDID, CommandUUID, Status, ErrorChain, RequestType) are added.
type Result struct {
	Status     string
	ErrorChain []ErrorChainItem
	Fields     map[string]any // command-specific top-level response keys
	drop       bool           // the report is lost: the session ends (misbehave.go)
}

// Handler answers one command. It may send check-ins (e.g. the
// DeclarativeManagement ones) before it returns.
type Handler func(ctx context.Context, d *Device, cmd *Command) Result

// CommandResult records one answered command.
type CommandResult struct {
	CommandUUID string
	RequestType string
	Status      string
	Report      []byte // the report plist sent back
	// Deferred: the command was carried out but its report waits for the
	// device's next session (DeferReport).
	Deferred bool
	// Dropped: the command was carried out but the Mac restarted before it
	// reported; the session ended and the report is lost (RestartMidUpdate).
	Dropped bool
}

// Session summarises one Connect.
type Session struct {
	// Commands are the commands answered in this session, in order: a
	// report deferred from an earlier session (DeferReport) comes first.
	Commands []CommandResult
	Requests int // PUTs sent, including the first (Idle, or a deferred report)
}

// RequestTypes lists the request types seen, in order.
func (s *Session) RequestTypes() []string {
	out := make([]string, len(s.Commands))
	for i, c := range s.Commands {
		out[i] = c.RequestType
	}
	return out
}

type override struct {
	requestType string // "" matches any
	status      string
	remaining   int // < 0: unlimited
	chain       []ErrorChainItem
	deferReport bool // carry the command out, report it in the next session
}

// AnswerNotNow makes the device answer the next n commands of requestType
// ("" for any) with NotNow, changing no state. n < 0 means until ClearOverrides.
func (d *Device) AnswerNotNow(requestType string, n int) {
	d.addOverride(override{requestType: requestType, status: StatusNotNow, remaining: n})
}

// AnswerError makes the device answer the next n commands of requestType
// ("" for any) with Error and the given chain (a generic one if empty).
// n < 0 means until ClearOverrides.
func (d *Device) AnswerError(requestType string, n int, chain ...ErrorChainItem) {
	if len(chain) == 0 {
		chain = []ErrorChainItem{{ErrorCode: 12000, ErrorDomain: "MCMDMErrorDomain",
			LocalizedDescription: "Simulated failure", USEnglishDescription: "Simulated failure"}}
	}
	d.addOverride(override{requestType: requestType, status: StatusError, remaining: n, chain: chain})
}

// DeferReport makes the device carry out the next n commands of
// requestType ("" for any) as usual but end the session on receiving each,
// without answering: its next Connect opens with that command's report
// instead of Idle. A Mac does this when it sleeps, restarts or loses the
// network while a command runs. n < 0 means until ClearOverrides.
func (d *Device) DeferReport(requestType string, n int) {
	d.addOverride(override{requestType: requestType, remaining: n, deferReport: true})
}

// ClearOverrides removes every AnswerNotNow, AnswerError and DeferReport
// switch. A report already deferred is still sent.
func (d *Device) ClearOverrides() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.overrides = nil
}

func (d *Device) addOverride(o override) {
	if o.remaining == 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.overrides = append(d.overrides, o)
}

// takeOverride consumes the first override that matches requestType.
func (d *Device) takeOverride(requestType string) (override, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range d.overrides {
		o := &d.overrides[i]
		if o.requestType != "" && o.requestType != requestType {
			continue
		}
		found := *o
		if o.remaining > 0 {
			o.remaining--
			if o.remaining == 0 {
				d.overrides = append(d.overrides[:i], d.overrides[i+1:]...)
			}
		}
		return found, true
	}
	return override{}, false
}

// ParseCommand decodes a command envelope {CommandUUID, Command{RequestType, ...}}.
func ParseCommand(raw []byte) (*Command, error) {
	var env struct {
		CommandUUID string
		Command     map[string]any
	}
	if err := plist.Unmarshal(raw, &env); err != nil {
		return nil, fmt.Errorf("decode command: %w", err)
	}
	if env.CommandUUID == "" {
		return nil, errors.New("command has no CommandUUID")
	}
	rt, _ := env.Command["RequestType"].(string)
	return &Command{CommandUUID: env.CommandUUID, RequestType: rt, Payload: env.Command, Raw: raw}, nil
}

// HandleCommand answers one command plist as this Mac would, without any
// network traffic, and returns the report to send back. It fails only when
// the bytes are not a command envelope with a CommandUUID; a missing
// RequestType gives a CommandFormatError report.
func (d *Device) HandleCommand(ctx context.Context, raw []byte) (CommandResult, error) {
	cmd, err := ParseCommand(raw)
	if err != nil {
		return CommandResult{}, fmt.Errorf("mdmtest: %w", err)
	}
	var (
		res      Result
		deferred bool
		o        override
		ok       bool
	)
	if cmd.RequestType != "" {
		o, ok = d.takeOverride(cmd.RequestType)
		deferred = ok && o.deferReport
	}
	if cmd.RequestType == "" {
		res = formatError("Command has no RequestType")
	} else if ok && !deferred {
		res = Result{Status: o.status, ErrorChain: o.chain}
	} else if h, ok := d.handlers[cmd.RequestType]; ok {
		res = h(ctx, d, cmd)
	} else {
		res = d.Builtin(ctx, cmd)
	}
	if res.Status == "" {
		res.Status = StatusAcknowledged
	}
	report := make(map[string]any, len(res.Fields)+5)
	for k, v := range res.Fields {
		if v != nil {
			report[k] = v
		}
	}
	report["UDID"] = d.UDID
	report["CommandUUID"] = cmd.CommandUUID
	report["Status"] = res.Status
	if cmd.RequestType != "" {
		report["RequestType"] = cmd.RequestType
	}
	if len(res.ErrorChain) > 0 {
		report["ErrorChain"] = res.ErrorChain
	}
	body, err := plist.Marshal(report)
	if err != nil {
		return CommandResult{}, fmt.Errorf("mdmtest: encode %s report: %w", cmd.RequestType, err)
	}
	return CommandResult{CommandUUID: cmd.CommandUUID, RequestType: cmd.RequestType, Status: res.Status, Report: body, Deferred: deferred, Dropped: res.drop}, nil
}

func formatError(msg string) Result {
	return Result{Status: StatusCommandFormatError, ErrorChain: []ErrorChainItem{{
		ErrorCode: 12001, ErrorDomain: "MCMDMErrorDomain", LocalizedDescription: msg, USEnglishDescription: msg,
	}}}
}

// Connect opens a command-channel session: it PUTs an Idle status to the
// ServerURL and answers every command the server sends until the server
// answers 200 with an empty body. Any other HTTP status is an *HTTPError.
// The session is returned even on error, with what happened so far.
func (d *Device) Connect(ctx context.Context) (*Session, error) {
	d.connMu.Lock()
	defer d.connMu.Unlock()
	d.mu.Lock()
	e := d.enrollment
	d.mu.Unlock()
	sess := &Session{}
	if e == nil {
		return sess, ErrNotEnrolled
	}
	start := d.clock.Now()
	err := d.connect(ctx, e, sess)
	if d.rec != nil {
		d.rec.Record("connect", d.clock.Now().Sub(start), err)
	}
	return sess, err
}

func (d *Device) idleBody() ([]byte, error) {
	return plist.Marshal(map[string]any{"Status": StatusIdle, "UDID": d.UDID})
}

func (d *Device) connect(ctx context.Context, e *Enrollment, sess *Session) error {
	d.mu.Lock()
	held := d.held
	d.held = nil
	d.mu.Unlock()
	var body []byte
	if held != nil {
		body = held.Report
		sess.Commands = append(sess.Commands, *held)
	} else {
		var err error
		if body, err = d.idleBody(); err != nil {
			return fmt.Errorf("mdmtest: encode idle: %w", err)
		}
	}
	for {
		answer, err := d.put(ctx, e.ServerURL, ContentTypeConnect, "connect.request", body)
		sess.Requests++
		if err != nil {
			if held != nil && sess.Requests == 1 {
				// The report did not get through: keep it for the next session.
				d.mu.Lock()
				d.held = held
				d.mu.Unlock()
				sess.Commands = sess.Commands[:0]
			}
			return err
		}
		if len(bytes.TrimSpace(answer)) == 0 {
			return nil
		}
		if len(sess.Commands) >= d.maxCommands {
			return fmt.Errorf("mdmtest: connect: more than %d commands in one session", d.maxCommands)
		}
		res, err := d.HandleCommand(ctx, answer)
		if err != nil {
			return fmt.Errorf("mdmtest: connect: %w", err)
		}
		if res.Dropped {
			sess.Commands = append(sess.Commands, res)
			return nil
		}
		if res.Deferred {
			d.mu.Lock()
			d.held = &res
			d.mu.Unlock()
			return nil
		}
		sess.Commands = append(sess.Commands, res)
		body = res.Report
	}
}
