package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/internal/cputime"
	"github.com/sundial-mdm/sundial/mdm/mdmtest"
)

// BenchmarkADEEnrollRequest measures the server side of one ADE enrollment
// request through the full router: CMS signature and chain to the Apple
// root, the ABM record, the setup minimum (a manual policy resolved against
// the catalog), a bound challenge stored in bbolt, and the profile built and
// signed (no TLS, no network). cpu-ms/op is the process's CPU time.
func BenchmarkADEEnrollRequest(b *testing.B) {
	ts, apple := startADEServer(b)
	ts.abmAssign(b, "", "C02BENCH001")
	// A MachineInfo built directly: a simulated Mac would start the key
	// pool's background RSA key generation, which is not the server's CPU.
	mi := mdmtest.MachineInfo{UDID: "00008103-000A1B2C3D4E5F60", Serial: "C02BENCH001", Product: "Mac14,2",
		Version: "24G830", OSVersion: "15.7.9", MDMCanRequestSoftwareUpdate: true, SoftwareUpdateDeviceID: "J413AP"}
	cert, key, err := apple.IssueDevice(mi.UDID, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	body, err := mdmtest.SignedMachineInfo(mi, cert, key, apple.Intermediate)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu0 := cputime.Process()
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/mdm/enroll", bytes.NewReader(body))
		req.Header.Set("Content-Type", mdmtest.ContentTypeMachineInfo)
		rec := httptest.NewRecorder()
		ts.app.handler.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("status %d body %q", rec.Code, rec.Body.String())
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(cputime.Process()-cpu0)/float64(b.N)/1e6, "cpu-ms/op")
}
