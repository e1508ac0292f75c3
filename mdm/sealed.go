package mdm

import "bytes"

// sealedPrefix starts the stored body of a command that carries a secret
// (the agent's settings profile): the rest is the body sealed at rest. The
// service opens it only to send it to the device; the admin API and
// exports show it redacted.
var sealedPrefix = []byte("sundial-sealed:")

// SealedRaw is the stored form of a command body sealed as `sealed`.
func SealedRaw(sealed []byte) []byte {
	return append(SealedRawPrefix(len(sealed)), sealed...)
}

// SealedRawPrefix returns the start of a stored sealed body with room for
// n more bytes: append the sealed bytes to it to get SealedRaw's result.
func SealedRawPrefix(n int) []byte {
	return append(make([]byte, 0, len(sealedPrefix)+n), sealedPrefix...)
}

// SealedPart returns the sealed bytes of a stored command body, and false
// when the body is not sealed.
func SealedPart(raw []byte) ([]byte, bool) {
	return bytes.CutPrefix(raw, sealedPrefix)
}

// RedactedRaw is what the admin API shows instead of a sealed body.
const RedactedRaw = "(sealed: this command carries a secret and is shown to no one)"
