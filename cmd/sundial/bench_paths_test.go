package main

import (
	"testing"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/mdmtest"
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

// BenchmarkProfileReportPath measures the load test's phase 1b: a Mac's
// report on its agent settings profile (InstallProfile, queued at
// enrolment and installed in the first session) opening its next session,
// answered with an empty body. Macs are enrolled outside the timer. A
// lone Mac's report waits out bbolt's batch delay, so ns/op is mostly
// waiting: compare the server's functions in a CPU profile.
func BenchmarkProfileReportPath(b *testing.B) {
	ts := startTestServer(b, b.TempDir())
	var macs []*mdmtest.Device
	enrol := func(n int) {
		for range n {
			mac := ts.enroll(b)
			mac.DeferReport("InstallProfile", 1)
			// The first session carries out the profile but ends
			// before reporting it.
			if _, err := mac.Connect(b.Context()); err != nil {
				b.Fatal(err)
			}
			macs = append(macs, mac)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if len(macs) == 0 {
			b.StopTimer()
			enrol(50)
			b.StartTimer()
		}
		mac := macs[len(macs)-1]
		macs = macs[:len(macs)-1]
		sess, err := mac.Connect(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		// The deferred report, and nothing sent in answer.
		if got := sess.RequestTypes(); len(got) != 1 || got[0] != "InstallProfile" {
			b.Fatalf("session handled %v, want the InstallProfile report alone", got)
		}
	}
}
