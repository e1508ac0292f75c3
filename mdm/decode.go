package mdm

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/micromdm/plist"
)

// MaxBodySize is the largest device request body Sundial accepts.
const MaxBodySize = 1 << 20

// ErrBinaryPlist is returned for binary property lists, which Sundial refuses
// from devices.
var ErrBinaryPlist = errors.New("binary property lists are not accepted")

// ParseError reports a device body that could not be decoded. It maps to
// HTTP 400.
type ParseError struct {
	What string
	Err  error
}

func (e *ParseError) Error() string { return "invalid " + e.What + ": " + e.Err.Error() }
func (e *ParseError) Unwrap() error { return e.Err }

var bplistMagic = []byte("bplist")

// decodeXMLPlist decodes an XML property list into v, refusing empty and
// binary input.
func decodeXMLPlist(what string, body []byte, v any) error {
	trimmed := bytes.TrimLeft(body, " \t\r\n\ufeff")
	if len(trimmed) == 0 {
		return &ParseError{What: what, Err: errors.New("empty body")}
	}
	if bytes.HasPrefix(trimmed, bplistMagic) {
		return &ParseError{What: what, Err: ErrBinaryPlist}
	}
	if trimmed[0] != '<' {
		return &ParseError{What: what, Err: errors.New("not an XML property list")}
	}
	if err := plist.Unmarshal(body, v); err != nil {
		return &ParseError{What: what, Err: fmt.Errorf("property list: %w", err)}
	}
	return nil
}
