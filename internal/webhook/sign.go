// Package webhook delivers Sundial's events to admin-configured URLs: JSON
// envelopes signed with HMAC-SHA256 over "<timestamp>.<body>", drained from
// the durable outbox (storage.WebhookOutbox) with retry and exponential
// backoff. See docs/webhooks.md for the receiver's side.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Headers of every delivery.
const (
	HeaderSignature = "Sundial-Signature"  // t=<unix seconds>,v1=<hex HMAC-SHA256>
	HeaderEventID   = "Sundial-Event-Id"   // the event's unique ID (dedupe on it)
	HeaderEventType = "Sundial-Event-Type" // the event's type
)

// DefaultTolerance is how far a receiver should accept a timestamp from its
// own clock; older deliveries are refused as possible replays.
const DefaultTolerance = 5 * time.Minute

// Errors of Verify.
var (
	ErrBadSignatureHeader = errors.New("webhook: malformed signature header")
	ErrSignatureMismatch  = errors.New("webhook: signature does not match")
	ErrStale              = errors.New("webhook: timestamp outside tolerance (possible replay)")
)

// mac is HMAC-SHA256(secret, "<ts>.<body>").
func mac(secret []byte, ts int64, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Sign returns the Sundial-Signature header value for body sent at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := t.Unix()
	return fmt.Sprintf("t=%d,v1=%s", ts, hex.EncodeToString(mac(secret, ts, body)))
}

// Verify checks a Sundial-Signature header against body and refuses a
// timestamp more than tolerance away from now. It is what a Go receiver
// calls; docs/webhooks.md describes the same steps for other languages.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var (
		ts   int64
		sigs [][]byte
		seen bool
	)
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrBadSignatureHeader
		}
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return ErrBadSignatureHeader
			}
			ts, seen = n, true
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil {
				return ErrBadSignatureHeader
			}
			sigs = append(sigs, b)
		}
	}
	if !seen || len(sigs) == 0 {
		return ErrBadSignatureHeader
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return ErrStale
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return ErrSignatureMismatch
}
