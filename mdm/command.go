package mdm

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"

	"github.com/micromdm/plist"
)

// Status is a device's report on a command.
type Status string

// The statuses a device reports (Apple: "Sending MDM commands to a device").
const (
	Acknowledged       Status = "Acknowledged"
	Error              Status = "Error"
	CommandFormatError Status = "CommandFormatError"
	NotNow             Status = "NotNow"
	Idle               Status = "Idle"
)

// Final reports whether the status ends a command: it leaves the queue.
func (s Status) Final() bool {
	return s == Acknowledged || s == Error || s == CommandFormatError
}

// ErrorChainItem is one entry of a report's ErrorChain.
type ErrorChainItem struct {
	ErrorCode            int    `plist:",omitempty" json:"ErrorCode"`
	ErrorDomain          string `plist:",omitempty" json:"ErrorDomain,omitempty"`
	LocalizedDescription string `plist:",omitempty" json:"LocalizedDescription,omitempty"`
	USEnglishDescription string `plist:",omitempty" json:"USEnglishDescription,omitempty"`
}

// Report is what a device PUTs to the ServerURL: Idle, or the result of the
// previous command. Command-specific keys stay in the raw body.
type Report struct {
	Enrollment
	Status      Status
	CommandUUID string           `plist:",omitempty"`
	RequestType string           `plist:",omitempty"`
	ErrorChain  []ErrorChainItem `plist:",omitempty"`
}

// DecodeReport decodes and checks a command report.
func DecodeReport(body []byte) (*Report, error) {
	r, ok := fastReport(body)
	if !ok {
		r = new(Report)
		if err := decodeXMLPlist("command report", body, r); err != nil {
			return nil, err
		}
	}
	if err := r.validate(); err != nil {
		return nil, &ParseError{What: "command report", Err: err}
	}
	return r, nil
}

func (r *Report) validate() error {
	switch r.Status {
	case Acknowledged, Error, CommandFormatError, NotNow:
		if r.CommandUUID == "" {
			return fmt.Errorf("%s without CommandUUID", r.Status)
		}
	case Idle:
	case "":
		return errors.New("missing Status")
	default:
		return fmt.Errorf("unknown Status %q", truncate(string(r.Status)))
	}
	if len(r.CommandUUID) > maxIDLen || len(r.RequestType) > maxFieldLen {
		return errors.New("a field is too long")
	}
	if len(r.ErrorChain) > 64 {
		return errors.New("ErrorChain is too long")
	}
	_, err := r.ID()
	return err
}

// Command is a queued command: its UUID, request type and the exact plist
// sent to the device.
type Command struct {
	UUID        string
	RequestType string
	Raw         []byte
}

type commandEnvelope struct {
	CommandUUID string
	Command     struct {
		RequestType string
	}
}

var uuidRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// DecodeCommand checks a raw command plist (as an admin enqueues it) and
// returns it as a Command. The body must be the flat envelope
// {CommandUUID, Command: {RequestType, ...}}.
func DecodeCommand(raw []byte) (*Command, error) {
	env, ok := fastCommand(raw)
	if !ok {
		env = commandEnvelope{}
		if err := decodeXMLPlist("command", raw, &env); err != nil {
			return nil, err
		}
	}
	if !uuidRE.MatchString(env.CommandUUID) {
		return nil, &ParseError{What: "command", Err: errors.New("missing or malformed CommandUUID")}
	}
	if env.Command.RequestType == "" || len(env.Command.RequestType) > 128 {
		return nil, &ParseError{What: "command", Err: errors.New("missing or malformed Command.RequestType")}
	}
	return &Command{UUID: env.CommandUUID, RequestType: env.Command.RequestType, Raw: raw}, nil
}

// NewCommand builds a command with a fresh UUID. payload holds the keys of the
// Command dictionary other than RequestType; it may be nil.
func NewCommand(requestType string, payload map[string]any) (*Command, error) {
	id := NewUUID()
	raw, err := encodeCommand(requestType, id, payload)
	if err != nil {
		return nil, err
	}
	return &Command{UUID: id, RequestType: requestType, Raw: raw}, nil
}

func encodeCommand(requestType, id string, payload map[string]any) ([]byte, error) {
	inner := make(map[string]any, len(payload)+1)
	for k, v := range payload {
		inner[k] = v
	}
	inner["RequestType"] = requestType
	raw, err := plist.MarshalIndent(map[string]any{"CommandUUID": id, "Command": inner}, "\t")
	if err != nil {
		return nil, fmt.Errorf("encode %s command: %w", requestType, err)
	}
	return raw, nil
}

// A CommandTemplate stamps out commands with one payload that differ only in
// their CommandUUID: a scheduler pass that sends the same ScheduleOSUpdate
// to 40,000 Macs encodes its plist once.
type CommandTemplate struct {
	requestType string
	head, tail  []byte // the body around the CommandUUID string
}

// NewCommandTemplate encodes payload (as NewCommand does) once.
func NewCommandTemplate(requestType string, payload map[string]any) (*CommandTemplate, error) {
	// A fresh random UUID cannot occur in the payload by chance; the
	// count check makes that certain rather than likely.
	marker := NewUUID()
	raw, err := encodeCommand(requestType, marker, payload)
	if err != nil {
		return nil, err
	}
	if bytes.Count(raw, []byte(marker)) != 1 {
		return nil, fmt.Errorf("encode %s command: the UUID placeholder is not unique", requestType)
	}
	i := bytes.Index(raw, []byte(marker))
	return &CommandTemplate{requestType: requestType, head: raw[:i], tail: raw[i+len(marker):]}, nil
}

// New returns a command with a fresh UUID. The body is the one NewCommand
// would encode for the same payload and UUID.
func (t *CommandTemplate) New() *Command {
	id := NewUUID()
	raw := make([]byte, 0, len(t.head)+len(id)+len(t.tail))
	raw = append(append(append(raw, t.head...), id...), t.tail...)
	return &Command{UUID: id, RequestType: t.requestType, Raw: raw}
}

// NewUUID returns a random (version 4) UUID in upper case, as Apple writes them.
func NewUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	const digits = "0123456789ABCDEF"
	var out [36]byte
	j := 0
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out[j] = '-'
			j++
		}
		out[j], out[j+1] = digits[c>>4], digits[c&0x0f]
		j += 2
	}
	return string(out[:])
}
