package mdm

import (
	"bytes"
	"encoding/base64"
	"fmt"
)

// A DataCommandTemplate stamps out commands whose payload is one data
// value that changes from command to command (InstallProfile's Payload):
// the plist is encoded once, and each command is that body with its UUID
// and the data's base64 copied in.
type DataCommandTemplate struct {
	requestType string
	parts       [3][]byte // the body around the data and then the UUID
}

// NewDataCommandTemplate encodes a requestType command with the data value
// key once, with markers in place of the UUID and the data.
func NewDataCommandTemplate(requestType, key string) (*DataCommandTemplate, error) {
	// Random markers cannot occur elsewhere in the body by chance; the
	// count checks make that certain rather than likely.
	uuidMarker := NewUUID()
	dataMarker := []byte(NewUUID())
	raw, err := encodeCommand(requestType, uuidMarker, map[string]any{key: dataMarker})
	if err != nil {
		return nil, err
	}
	dataB64 := []byte(base64.StdEncoding.EncodeToString(dataMarker))
	if bytes.Count(raw, []byte(uuidMarker)) != 1 || bytes.Count(raw, dataB64) != 1 {
		return nil, fmt.Errorf("encode %s command: a placeholder is not unique", requestType)
	}
	// The encoder sorts keys: the Command dictionary, holding the data,
	// comes before CommandUUID.
	d, u := bytes.Index(raw, dataB64), bytes.Index(raw, []byte(uuidMarker))
	if d > u {
		return nil, fmt.Errorf("encode %s command: the data is not before the UUID", requestType)
	}
	return &DataCommandTemplate{requestType: requestType,
		parts: [3][]byte{raw[:d], raw[d+len(dataB64) : u], raw[u+len(uuidMarker):]}}, nil
}

// New returns a command with a fresh UUID and data as the value. The body
// is the one NewCommand encodes for the same payload and UUID.
func (t *DataCommandTemplate) New(data []byte) *Command {
	id := NewUUID()
	enc := base64.StdEncoding
	n := len(t.parts[0]) + len(t.parts[1]) + len(t.parts[2]) + len(id) + enc.EncodedLen(len(data))
	raw := make([]byte, 0, n)
	raw = append(raw, t.parts[0]...)
	raw = enc.AppendEncode(raw, data)
	raw = append(raw, t.parts[1]...)
	raw = append(raw, id...)
	raw = append(raw, t.parts[2]...)
	return &Command{UUID: id, RequestType: t.requestType, Raw: raw}
}
