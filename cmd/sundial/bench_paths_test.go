package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
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

// BenchmarkCommandRoundTripHandler measures the server side of one command
// round trip as the load test's phase 3 makes it: a signed Idle connect
// answered with the queued ProfileList, then the signed acknowledged
// result, stored, answered with an empty body. It calls the handler
// directly (no TLS, no network); the bulk enqueue and the Macs' signing
// happen outside the timer. A lone report waits out bbolt's batch delay,
// so compare allocations and a CPU profile rather than ns/op.
func BenchmarkCommandRoundTripHandler(b *testing.B) {
	ts := startTestServer(b, b.TempDir())
	const fleet = 16
	macs := make([]*mdmtest.Device, fleet)
	ids := make([]string, fleet)
	idleSigs := make([]string, fleet)
	for i := range macs {
		macs[i] = ts.enroll(b)
		if _, err := macs[i].Connect(b.Context()); err != nil {
			b.Fatal(err)
		}
		ids[i] = macs[i].UDID
		idleSigs[i] = sign(b, macs[i], idleBody(ids[i]))
	}
	type report struct {
		body []byte
		sig  string
	}
	var acks []report
	// queue gives every Mac a ProfileList and signs its answer.
	queue := func() {
		cmd, err := mdm.NewCommand("ProfileList", nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ts.admin.EnqueueBulk(b.Context(), ids, cmd.Raw); err != nil {
			b.Fatal(err)
		}
		acks = acks[:0]
		for _, mac := range macs {
			res, err := mac.HandleCommand(b.Context(), cmd.Raw)
			if err != nil {
				b.Fatal(err)
			}
			acks = append(acks, report{res.Report, sign(b, mac, res.Report)})
		}
	}
	put := func(body []byte, sig string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPut, "/mdm/connect", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-apple-aspen-mdm")
		req.Header.Set("Mdm-Signature", sig)
		rec := httptest.NewRecorder()
		ts.app.handler.ServeHTTP(rec, req)
		return rec
	}
	i := fleet
	b.ReportAllocs()
	for b.Loop() {
		if i == fleet {
			b.StopTimer()
			queue()
			i = 0
			b.StartTimer()
		}
		if rec := put(idleBody(ids[i]), idleSigs[i]); rec.Code != 200 || !bytes.Contains(rec.Body.Bytes(), []byte("ProfileList")) {
			b.Fatalf("idle: status %d body %q", rec.Code, rec.Body.String())
		}
		if rec := put(acks[i].body, acks[i].sig); rec.Code != 200 || rec.Body.Len() != 0 {
			b.Fatalf("ack: status %d body %q", rec.Code, rec.Body.String())
		}
		i++
	}
}
