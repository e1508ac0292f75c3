// Package push wakes enrolled devices through the Apple Push Notification
// service (APNs) so that they connect to the MDM server.
//
// The package holds the domain types shared by every push implementation
// (Target, Outcome, Result and the Sender interface) and the Service that
// decides when to push: it coalesces the pushes asked for within a short window
// into one per device, re-pushes devices that have pending work but stay
// silent (with exponential backoff and a cap), stops pushing tokens that APNs
// reports as gone and reports certificate problems to the operator.
//
// The APNs client lives in the apns sub-package and a mock APNs server for
// tests and demos in apnsmock.
package push

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// Target is one device (or user channel) to wake.
//
// Token and PushMagic come from the device's TokenUpdate check-in message.
// They are secrets for the purpose of logging: never log them or put them in
// error strings; use TokenHash to refer to a token.
type Target struct {
	// EnrollmentID identifies the enrollment the push is for.
	EnrollmentID string
	// Topic is the APNs topic from TokenUpdate. It must equal the UID of the
	// push certificate. Empty means the sender's topic.
	Topic string
	// Token is the raw APNs device token from TokenUpdate.
	Token []byte
	// PushMagic is the string sent in the payload, from TokenUpdate.
	PushMagic string
}

// Outcome classifies the result of one push.
type Outcome string

// The outcomes of a push.
const (
	// OutcomeOK means APNs accepted the push (HTTP 200).
	OutcomeOK Outcome = "ok"
	// OutcomeUnregistered means the token is no longer active for the topic
	// (HTTP 410 Unregistered). Stop pushing it until the next TokenUpdate.
	OutcomeUnregistered Outcome = "unregistered"
	// OutcomeBadToken means APNs rejected the token (HTTP 400 BadDeviceToken
	// or DeviceTokenNotForTopic). Stop pushing it until the next TokenUpdate.
	OutcomeBadToken Outcome = "bad_token"
	// OutcomeCertError means the push certificate or topic was refused
	// (HTTP 403, a TLS alert, an expired certificate, a topic APNs does not
	// accept). It needs an operator: report it, do not retry in a loop.
	OutcomeCertError Outcome = "cert_error"
	// OutcomeRetry means a transient failure (HTTP 429, 500, 503, a timeout or
	// a connection error): try again later, with backoff.
	OutcomeRetry Outcome = "retry"
	// OutcomeError is any other failure (a malformed request, an unexpected
	// status, a target with missing data).
	OutcomeError Outcome = "error"
)

// Outcomes lists every Outcome, in a stable order (for metrics and reports).
var Outcomes = []Outcome{OutcomeOK, OutcomeUnregistered, OutcomeBadToken, OutcomeCertError, OutcomeRetry, OutcomeError}

// InvalidatesToken reports whether the outcome means that the device token
// must not be pushed again until the device sends a new TokenUpdate.
func (o Outcome) InvalidatesToken() bool {
	return o == OutcomeUnregistered || o == OutcomeBadToken
}

// Result is the outcome of pushing one Target.
type Result struct {
	// EnrollmentID is the Target's EnrollmentID.
	EnrollmentID string
	// Outcome classifies the result.
	Outcome Outcome
	// Status is the HTTP status APNs answered, or 0 if there was no answer.
	Status int
	// Reason is APNs' reason string ("Unregistered", "BadDeviceToken", ...),
	// or a short description of a local failure ("Timeout",
	// "ConnectionError", "CertificateExpired", ...).
	Reason string
	// Latency is the time the request took.
	Latency time.Duration
	// Err describes a failure; nil when Outcome is OutcomeOK. It never
	// contains the token or the push magic.
	Err error
}

// Sender sends pushes. Send pushes every target and returns one Result per
// target, in the same order. It never returns early without results: a
// cancelled context yields OutcomeRetry results.
type Sender interface {
	Send(ctx context.Context, targets []Target) []Result
}

// ReadySender is a Sender that can tell when it cannot push at all (no
// push certificate). While Ready is false the Service does not look for
// due re-pushes; whoever makes it ready calls Service.CertChanged.
type ReadySender interface {
	Sender
	Ready() bool
}

// Clock tells the time. Inject one; library code never reads the wall clock
// directly.
type Clock interface {
	Now() time.Time
}

// SystemClock is the Clock that reads the real time.
type SystemClock struct{}

// Now returns the current time.
func (SystemClock) Now() time.Time { return time.Now() }

// StatusError is an error answer from APNs.
type StatusError struct {
	// Status is the HTTP status code.
	Status int
	// Reason is APNs' reason string, possibly empty.
	Reason string
}

// Error implements error.
func (e *StatusError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("apns answered status %d", e.Status)
	}
	return fmt.Sprintf("apns answered status %d %s", e.Status, e.Reason)
}

// TokenHash returns a short, non-reversible identifier of a device token, fit
// for logs: the first 8 hex digits of its SHA-256.
func TokenHash(token []byte) string {
	sum := sha256.Sum256(token)
	return hex.EncodeToString(sum[:4])
}
