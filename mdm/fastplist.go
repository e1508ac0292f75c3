package mdm

import (
	"bytes"
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// A fast path for the property lists Sundial decodes on every request:
// command reports, check-in messages and the commands admins queue. The
// plist library builds a tree from encoding/xml's tokens and then fills the
// struct by reflection, with hundreds of allocations per message
// (docs/benchmarks.md). This reads the same bytes in place.
//
// It accepts only a narrow, canonical form: an optional XML declaration
// and Apple's DOCTYPE as Macs send them, <plist version="1.0"> (or
// <plist>), one root <dict>, and inside it <key>, <string>, <data>,
// <integer>, <real>, <date>, <true/>, <false/>, <dict> and <array>
// elements without attributes, separated by XML whitespace, whose text is
// printable ASCII without markup ('<', '>', '&'). Values of keys the
// target does not have are checked as the library would parse them, then
// skipped. Anything else (comments, entities, CDATA, self-closing strings
// or containers, other encodings, non-ASCII text, carriage returns inside
// text, a known key with a value of another type, a repeated nested
// struct) declines, and the caller asks the library, whose verdict is
// final. The fuzz targets in fastplist_test.go check that whenever this
// accepts a body, the library decodes it to the same value.

var (
	fastXMLDecls = [][]byte{
		[]byte(`<?xml version="1.0" encoding="UTF-8"?>`),
		[]byte(`<?xml version="1.0"?>`),
	}
	fastDoctype    = []byte(`<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">`)
	fastPlistOpens = [][]byte{[]byte(`<plist version="1.0">`), []byte(`<plist>`)}
)

// fastKind is the type of a value the fast path read.
type fastKind uint8

const (
	fastString fastKind = iota
	fastData
	fastInteger
	fastReal
	fastDate
	fastTrue
	fastFalse
	fastDict
	fastArray
)

// fastValue is one value: the text of a scalar (checked to parse as the
// library parses it), or the checked bytes between a dict's or an array's
// tags.
type fastValue struct {
	kind fastKind
	text []byte
}

// bytes decodes a data value (already known to decode). Empty data is
// nil, as the library returns it.
func (v fastValue) bytes() []byte {
	b, _ := decodeData(v.text)
	return b
}

// maxFastDepth bounds nesting; deeper input declines.
const maxFastDepth = 32

// fastPlistDict reads body in the canonical form and calls set for every
// entry of its root dict, in order. set returns false to decline.
func fastPlistDict(body []byte, set func(key []byte, v fastValue) bool) bool {
	p := fastParser{b: body}
	if !p.oneOf(fastXMLDecls) && p.peek("<?") {
		return false // another declaration, or a processing instruction
	}
	p.space()
	p.lit(fastDoctype)
	p.space()
	if !p.oneOf(fastPlistOpens) {
		return false
	}
	p.space()
	if !p.lit([]byte("<dict>")) || !p.entries("</dict>", set) {
		return false
	}
	p.space()
	if !p.lit([]byte("</plist>")) {
		return false
	}
	p.space()
	return len(p.b) == 0
}

// fastDictEntries calls set for each entry of a dict's inner bytes (a
// fastDict value's text).
func fastDictEntries(inner []byte, set func(key []byte, v fastValue) bool) bool {
	p := fastParser{b: inner}
	return p.entries("", set)
}

// entries reads key and value pairs up to and including closing, or to
// the end of the input when closing is empty.
func (p *fastParser) entries(closing string, set func(key []byte, v fastValue) bool) bool {
	for {
		p.space()
		if closing == "" && len(p.b) == 0 {
			return true
		}
		if closing != "" && p.lit([]byte(closing)) {
			return true
		}
		key, ok := p.element("key")
		if !ok {
			return false
		}
		p.space()
		v, ok := p.value(1)
		if !ok || !set(key, v) {
			return false
		}
	}
}

type fastParser struct{ b []byte }

// value reads one value element at nesting depth.
func (p *fastParser) value(depth int) (fastValue, bool) {
	if depth > maxFastDepth || len(p.b) < 3 || p.b[0] != '<' {
		return fastValue{}, false
	}
	switch {
	case p.lit([]byte("<true/>")):
		return fastValue{kind: fastTrue}, true
	case p.lit([]byte("<false/>")):
		return fastValue{kind: fastFalse}, true
	case p.peek("<dict>"):
		return p.container("dict", fastDict, depth)
	case p.peek("<array>"):
		return p.container("array", fastArray, depth)
	}
	for _, s := range fastScalars {
		if !p.peek("<" + s.name + ">") {
			continue
		}
		text, ok := p.element(s.name)
		if !ok || !s.check(text) {
			return fastValue{}, false
		}
		return fastValue{kind: s.kind, text: text}, true
	}
	return fastValue{}, false
}

// container reads a dict or an array, checking every value inside it.
func (p *fastParser) container(name string, kind fastKind, depth int) (fastValue, bool) {
	p.b = p.b[len(name)+2:]
	start := p.b
	closing := "</" + name + ">"
	for {
		p.space()
		if p.peek(closing) {
			inner := start[:len(start)-len(p.b)]
			p.b = p.b[len(closing):]
			return fastValue{kind: kind, text: inner}, true
		}
		if kind == fastDict {
			if _, ok := p.element("key"); !ok {
				return fastValue{}, false
			}
			p.space()
		}
		if _, ok := p.value(depth + 1); !ok {
			return fastValue{}, false
		}
	}
}

// fastScalars are the text elements, each with the check that makes its
// text parse as the library parses it.
var fastScalars = []struct {
	name  string
	kind  fastKind
	check func([]byte) bool
}{
	{"string", fastString, func([]byte) bool { return true }},
	{"data", fastData, func(b []byte) bool { _, ok := decodeData(b); return ok }},
	{"integer", fastInteger, func(b []byte) bool {
		// The library trims the text, then reads a signed or an
		// unsigned 64-bit decimal by its sign.
		s := strings.TrimSpace(string(b))
		if strings.HasPrefix(s, "-") {
			_, err := strconv.ParseInt(s, 10, 64)
			return err == nil
		}
		_, err := strconv.ParseUint(s, 10, 64)
		return err == nil
	}},
	{"real", fastReal, func(b []byte) bool {
		_, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
		return err == nil
	}},
	{"date", fastDate, func(b []byte) bool {
		var t time.Time
		return t.UnmarshalText(b) == nil
	}},
}

// decodeData decodes a data element's text as the library does: without
// its whitespace, standard base64 with padding; empty is nil.
func decodeData(text []byte) ([]byte, bool) {
	if len(text) == 0 {
		return nil, true
	}
	clean := make([]byte, 0, len(text))
	for _, c := range text {
		if c != ' ' && c != '\t' && c != '\n' {
			clean = append(clean, c)
		}
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(clean)))
	n, err := base64.StdEncoding.Decode(out, clean)
	if err != nil {
		return nil, false
	}
	return out[:n], true
}

// space skips XML whitespace.
func (p *fastParser) space() {
	i := 0
	for i < len(p.b) && (p.b[i] == ' ' || p.b[i] == '\t' || p.b[i] == '\n' || p.b[i] == '\r') {
		i++
	}
	p.b = p.b[i:]
}

func (p *fastParser) peek(s string) bool { return bytes.HasPrefix(p.b, []byte(s)) }

// lit consumes s if the input starts with it.
func (p *fastParser) lit(s []byte) bool {
	if !bytes.HasPrefix(p.b, s) {
		return false
	}
	p.b = p.b[len(s):]
	return true
}

func (p *fastParser) oneOf(ss [][]byte) bool {
	for _, s := range ss {
		if p.lit(s) {
			return true
		}
	}
	return false
}

// element reads <name>text</name> where text is plain (see plainText).
func (p *fastParser) element(name string) ([]byte, bool) {
	b := p.b
	if len(b) < 2*len(name)+5 || b[0] != '<' || string(b[1:1+len(name)]) != name || b[1+len(name)] != '>' {
		return nil, false
	}
	b = b[len(name)+2:]
	end := bytes.IndexByte(b, '<')
	if end < 0 || !plainText(b[:end]) {
		return nil, false
	}
	text, rest := b[:end], b[end:]
	if len(rest) < len(name)+3 || rest[1] != '/' || string(rest[2:2+len(name)]) != name || rest[2+len(name)] != '>' {
		return nil, false
	}
	p.b = rest[len(name)+3:]
	return text, true
}

// plainText reports whether text reads the same to an XML parser as its
// bytes: printable ASCII, tabs and newlines, and no markup or references.
// (A carriage return would be normalised by the parser.)
func plainText(text []byte) bool {
	for _, c := range text {
		switch {
		case c == '\t' || c == '\n':
		case c < 0x20 || c > 0x7e:
			return false
		case c == '&' || c == '>' || c == '<':
			return false
		}
	}
	return true
}

// fastReport decodes a command report in the canonical form.
func fastReport(body []byte) (*Report, bool) {
	r := new(Report)
	ok := fastPlistDict(body, func(key []byte, v fastValue) bool {
		if string(key) == "ErrorChain" {
			return false // an array of dicts: the library's business
		}
		f := r.stringField(key)
		if f == nil {
			return true // the library ignores keys the struct lacks
		}
		if v.kind != fastString {
			return false
		}
		*f = knownString(v.text)
		return true
	})
	return r, ok
}

// knownStrings are the values of the enumerated fields a device sends on
// every request (Status, MessageType).
var knownStrings = []string{
	string(Idle), string(Acknowledged), string(Error), string(NotNow), string(CommandFormatError),
	string(Authenticate), string(TokenUpdate), string(DeclarativeManagement), string(CheckOut),
	string(UserAuthenticate), string(SetBootstrapToken), string(GetBootstrapToken),
}

// knownString is string(b), without an allocation when b is one of
// knownStrings.
func knownString(b []byte) string {
	for _, k := range knownStrings {
		if string(b) == k {
			return k
		}
	}
	return string(b)
}

// stringField returns the string field of r named key, as the library
// matches plist keys to field names (exactly), or nil.
func (r *Report) stringField(key []byte) *string {
	switch string(key) {
	case "Status":
		return (*string)(&r.Status)
	case "CommandUUID":
		return &r.CommandUUID
	case "RequestType":
		return &r.RequestType
	}
	return r.Enrollment.stringField(key)
}

func (e *Enrollment) stringField(key []byte) *string {
	switch string(key) {
	case "UDID":
		return &e.UDID
	case "EnrollmentID":
		return &e.EnrollmentID
	case "UserID":
		return &e.UserID
	case "UserShortName":
		return &e.UserShortName
	case "UserLongName":
		return &e.UserLongName
	case "EnrollmentUserID":
		return &e.EnrollmentUserID
	}
	return nil
}

// fastCheckin decodes a check-in message in the canonical form.
func fastCheckin(body []byte) (*CheckinMessage, bool) {
	m := new(CheckinMessage)
	ok := fastPlistDict(body, func(key []byte, v fastValue) bool {
		if f := m.stringField(key); f != nil {
			if v.kind != fastString {
				return false
			}
			*f = knownString(v.text)
			return true
		}
		if f := m.bytesField(key); f != nil {
			if v.kind != fastData {
				return false
			}
			*f = v.bytes()
			return true
		}
		if f := m.boolField(key); f != nil {
			if v.kind != fastTrue && v.kind != fastFalse {
				return false
			}
			*f = v.kind == fastTrue
			return true
		}
		return true
	})
	return m, ok
}

func (m *CheckinMessage) stringField(key []byte) *string {
	switch string(key) {
	case "MessageType":
		return (*string)(&m.MessageType)
	case "Topic":
		return &m.Topic
	case "OSVersion":
		return &m.OSVersion
	case "BuildVersion":
		return &m.BuildVersion
	case "ProductName":
		return &m.ProductName
	case "SerialNumber":
		return &m.SerialNumber
	case "DeviceName":
		return &m.DeviceName
	case "Model":
		return &m.Model
	case "ModelName":
		return &m.ModelName
	case "PushMagic":
		return &m.PushMagic
	case "DigestResponse":
		return &m.DigestResponse
	case "Endpoint":
		return &m.Endpoint
	}
	return m.Enrollment.stringField(key)
}

func (m *CheckinMessage) bytesField(key []byte) *[]byte {
	switch string(key) {
	case "Token":
		return &m.Token
	case "UnlockToken":
		return &m.UnlockToken
	case "BootstrapToken":
		return &m.BootstrapToken
	case "Data":
		return &m.Data
	}
	return nil
}

func (m *CheckinMessage) boolField(key []byte) *bool {
	switch string(key) {
	case "AwaitingConfiguration":
		return &m.AwaitingConfiguration
	case "NotOnConsole":
		return &m.NotOnConsole
	}
	return nil
}

// fastCommand decodes a command envelope in the canonical form.
func fastCommand(body []byte) (commandEnvelope, bool) {
	var env commandEnvelope
	seenCommand := false
	ok := fastPlistDict(body, func(key []byte, v fastValue) bool {
		switch string(key) {
		case "CommandUUID":
			if v.kind != fastString {
				return false
			}
			env.CommandUUID = string(v.text)
		case "Command":
			// The library keeps only the last of repeated keys; a
			// repeated dict would leave fields of the first here.
			if v.kind != fastDict || seenCommand {
				return false
			}
			seenCommand = true
			return fastDictEntries(v.text, func(key []byte, v fastValue) bool {
				if string(key) != "RequestType" {
					return true
				}
				if v.kind != fastString {
					return false
				}
				env.Command.RequestType = string(v.text)
				return true
			})
		}
		return true
	})
	return env, ok
}

// fastDeviceInformation decodes the inventory of a DeviceInformation
// answer in the canonical form, as DecodeDeviceInformation does through
// the library.
func fastDeviceInformation(body []byte) (*Inventory, bool) {
	inv := new(Inventory)
	seen := false
	ok := fastPlistDict(body, func(key []byte, v fastValue) bool {
		if string(key) != "QueryResponses" {
			return true
		}
		// The library keeps only the last of repeated keys.
		if v.kind != fastDict || seen {
			return false
		}
		seen = true
		return fastDictEntries(v.text, inv.setFast)
	})
	if !ok {
		return nil, false
	}
	if inv.Reported == 0 {
		inv.Reported = noInventoryKeys
	}
	return inv, true
}

// setFast sets the field named key from v and marks it reported. Keys
// Inventory lacks are ignored; a value of another type declines.
func (inv *Inventory) setFast(key []byte, v fastValue) bool {
	bit, ok := inventoryBits[string(key)]
	if !ok {
		return true
	}
	switch f := inv.field(key).(type) {
	case *string:
		if v.kind != fastString {
			return false
		}
		*f = string(v.text)
	case *bool:
		if v.kind != fastTrue && v.kind != fastFalse {
			return false
		}
		*f = v.kind == fastTrue
	case *float64:
		if v.kind != fastReal {
			return false
		}
		x, err := strconv.ParseFloat(strings.TrimSpace(string(v.text)), 64)
		if err != nil {
			return false
		}
		*f = x
	default:
		return false
	}
	inv.Reported |= 1 << bit
	return true
}

// field returns a pointer to the data field of inv named key, or nil.
func (inv *Inventory) field(key []byte) any {
	switch string(key) {
	case "OSVersion":
		return &inv.OSVersion
	case "BuildVersion":
		return &inv.BuildVersion
	case "SupplementalBuildVersion":
		return &inv.SupplementalBuildVersion
	case "SupplementalOSVersionExtra":
		return &inv.SupplementalOSVersionExtra
	case "ProductName":
		return &inv.ProductName
	case "Model":
		return &inv.Model
	case "ModelName":
		return &inv.ModelName
	case "DeviceName":
		return &inv.DeviceName
	case "SerialNumber":
		return &inv.SerialNumber
	case "IsSupervised":
		return &inv.IsSupervised
	case "IsAppleSilicon":
		return &inv.IsAppleSilicon
	case "AvailableDeviceCapacity":
		return &inv.AvailableDeviceCapacity
	case "DeviceCapacity":
		return &inv.DeviceCapacity
	case "SoftwareUpdateDeviceID":
		return &inv.SoftwareUpdateDeviceID
	}
	return nil
}
