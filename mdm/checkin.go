package mdm

import (
	"errors"
	"fmt"
)

// MessageType names a check-in message.
type MessageType string

// The check-in messages Sundial understands.
const (
	Authenticate          MessageType = "Authenticate"
	TokenUpdate           MessageType = "TokenUpdate"
	CheckOut              MessageType = "CheckOut"
	UserAuthenticate      MessageType = "UserAuthenticate"
	SetBootstrapToken     MessageType = "SetBootstrapToken"
	GetBootstrapToken     MessageType = "GetBootstrapToken"
	DeclarativeManagement MessageType = "DeclarativeManagement"
)

// CheckinMessage is any check-in message. Fields a message type does not
// carry are zero. One flat struct lets a body be decoded in a single pass.
type CheckinMessage struct {
	Enrollment
	MessageType MessageType
	Topic       string `plist:",omitempty"`

	// Authenticate.
	OSVersion    string `plist:",omitempty"`
	BuildVersion string `plist:",omitempty"`
	ProductName  string `plist:",omitempty"`
	SerialNumber string `plist:",omitempty"`
	DeviceName   string `plist:",omitempty"`
	Model        string `plist:",omitempty"`
	ModelName    string `plist:",omitempty"`

	// TokenUpdate.
	Token                 []byte `plist:",omitempty"`
	PushMagic             string `plist:",omitempty"`
	UnlockToken           []byte `plist:",omitempty"`
	AwaitingConfiguration bool   `plist:",omitempty"`
	NotOnConsole          bool   `plist:",omitempty"`

	// SetBootstrapToken.
	BootstrapToken []byte `plist:",omitempty"`

	// UserAuthenticate.
	DigestResponse string `plist:",omitempty"`

	// DeclarativeManagement.
	Endpoint string `plist:",omitempty"`
	Data     []byte `plist:",omitempty"`
}

// maxFieldLen bounds free-text fields taken from devices.
const maxFieldLen = 1024

// DecodeCheckin decodes and checks a check-in body.
func DecodeCheckin(body []byte) (*CheckinMessage, error) {
	msg, ok := fastCheckin(body)
	if !ok {
		msg = new(CheckinMessage)
		if err := decodeXMLPlist("check-in", body, msg); err != nil {
			return nil, err
		}
	}
	if err := msg.validate(); err != nil {
		return nil, &ParseError{What: "check-in", Err: err}
	}
	return msg, nil
}

func (m *CheckinMessage) validate() error {
	switch m.MessageType {
	case Authenticate, TokenUpdate, CheckOut, UserAuthenticate,
		SetBootstrapToken, GetBootstrapToken, DeclarativeManagement:
	case "":
		return errors.New("missing MessageType")
	default:
		return fmt.Errorf("unknown MessageType %q", truncate(string(m.MessageType)))
	}
	if _, err := m.ID(); err != nil {
		return err
	}
	for _, f := range []string{m.Topic, m.OSVersion, m.BuildVersion, m.ProductName,
		m.SerialNumber, m.DeviceName, m.Model, m.ModelName, m.PushMagic, m.Endpoint} {
		if len(f) > maxFieldLen {
			return errors.New("a field is too long")
		}
	}
	switch m.MessageType {
	case Authenticate:
		if m.Topic == "" {
			return errors.New("Authenticate without Topic")
		}
	case TokenUpdate:
		if len(m.Token) == 0 || m.PushMagic == "" {
			return errors.New("TokenUpdate without Token or PushMagic")
		}
	case DeclarativeManagement:
		if m.Endpoint == "" {
			return errors.New("DeclarativeManagement without Endpoint")
		}
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
