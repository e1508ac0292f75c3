package mdm

import "bytes"

// A fast path for the commonest device body: a command report whose dict
// holds only strings (every Idle, and most Acknowledged and NotNow
// reports). The plist library builds a tree from encoding/xml's tokens and
// then fills the struct by reflection, about 10 µs for a 300-byte Idle
// body and a tenth of the server's CPU on an Idle connect; this reads the
// same bytes in place.
//
// It accepts only a narrow, canonical form: an optional XML declaration
// and Apple's DOCTYPE as Macs send them, <plist version="1.0"> (or
// <plist>), one <dict> of <key>/<string> pairs separated by XML whitespace,
// and text of printable ASCII without markup ('<', '>', '&'). Anything
// else (other value types, ErrorChain, comments, entities, CDATA, other
// encodings, non-ASCII text, carriage returns inside text) returns ok
// false, and DecodeReport asks the library, whose verdict is final.
// FuzzFastReportAgrees checks that whenever this accepts a body, the
// library decodes it to the same Report.

var (
	fastXMLDecls = [][]byte{
		[]byte(`<?xml version="1.0" encoding="UTF-8"?>`),
		[]byte(`<?xml version="1.0"?>`),
	}
	fastDoctype    = []byte(`<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">`)
	fastPlistOpens = [][]byte{[]byte(`<plist version="1.0">`), []byte(`<plist>`)}
)

// fastReport decodes body if it has the canonical form above.
func fastReport(body []byte) (r *Report, ok bool) {
	p := fastParser{b: body}
	if !p.oneOf(fastXMLDecls) && p.peek("<?") {
		return nil, false // another declaration, or a processing instruction
	}
	p.space()
	p.lit(fastDoctype)
	p.space()
	if !p.oneOf(fastPlistOpens) {
		return nil, false
	}
	p.space()
	if !p.lit([]byte("<dict>")) {
		return nil, false
	}
	r = new(Report)
	for {
		p.space()
		if p.lit([]byte("</dict>")) {
			break
		}
		key, ok := p.element("key")
		if !ok {
			return nil, false
		}
		p.space()
		val, ok := p.element("string")
		if !ok || !r.setString(key, val) {
			return nil, false
		}
	}
	p.space()
	if !p.lit([]byte("</plist>")) {
		return nil, false
	}
	p.space()
	if len(p.b) != 0 {
		return nil, false
	}
	return r, true
}

// setString sets the field named key, as the library matches plist keys
// to field names (exactly; the last of duplicate keys wins). Unknown keys
// are ignored, as the library ignores them. It returns false for a key
// whose field is not a string.
func (r *Report) setString(key, val []byte) bool {
	switch string(key) {
	case "Status":
		r.Status = Status(val)
	case "CommandUUID":
		r.CommandUUID = string(val)
	case "RequestType":
		r.RequestType = string(val)
	case "UDID":
		r.UDID = string(val)
	case "EnrollmentID":
		r.EnrollmentID = string(val)
	case "UserID":
		r.UserID = string(val)
	case "UserShortName":
		r.UserShortName = string(val)
	case "UserLongName":
		r.UserLongName = string(val)
	case "EnrollmentUserID":
		r.EnrollmentUserID = string(val)
	case "ErrorChain":
		return false // an array: the library's business
	}
	return true
}

type fastParser struct{ b []byte }

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
