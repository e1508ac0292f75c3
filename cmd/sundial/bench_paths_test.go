package main

import (
	"testing"

	"github.com/sundial-mdm/sundial/mdm"
)

// BenchmarkEnrolmentPath measures one enrolment as the load test defines
// it, over HTTPS on loopback with durable bbolt writes: profile, SCEP,
// Authenticate, TokenUpdate and the first DeviceInformation round trip
// (the agent's settings profile sent with it is installed and reported).
// The simulated Mac's work (RSA signing, TLS) is in the same process, so
// compare server functions in a CPU profile, not the ns/op alone.
func BenchmarkEnrolmentPath(b *testing.B) {
	ts := startTestServer(b, b.TempDir())
	b.ReportAllocs()
	for b.Loop() {
		mac := ts.enroll(b)
		if _, err := mac.Connect(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCommandRoundTripPath measures one command round trip: enqueue
// through the admin API, deliver on a signed Idle connect, and store the
// Mac's acknowledged result.
func BenchmarkCommandRoundTripPath(b *testing.B) {
	ts := startTestServer(b, b.TempDir())
	mac := ts.enroll(b)
	for range 3 {
		if _, err := mac.Connect(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		cmd, err := mdm.NewCommand("ProfileList", nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ts.admin.Enqueue(b.Context(), mac.UDID, cmd.Raw); err != nil {
			b.Fatal(err)
		}
		sess, err := mac.Connect(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		if n := len(sess.RequestTypes()); n != 1 {
			b.Fatalf("%d commands delivered, want 1", n)
		}
	}
}
