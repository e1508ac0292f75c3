package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkIdleConnectHandler measures the server side of one signed Idle
// connect with nothing queued: signature and chain check, plist decode,
// certificate binding and queue lookup (no TLS, no network).
func BenchmarkIdleConnectHandler(b *testing.B) {
	ts := startTestServer(b, b.TempDir())
	mac := ts.enroll(b)
	if _, err := mac.Connect(b.Context()); err != nil {
		b.Fatal(err)
	}
	body := idleBody(mac.UDID)
	sig := sign(b, mac, body)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPut, "/mdm/connect", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-apple-aspen-mdm")
		req.Header.Set("Mdm-Signature", sig)
		rec := httptest.NewRecorder()
		ts.app.handler.ServeHTTP(rec, req)
		if rec.Code != 200 || rec.Body.Len() != 0 {
			b.Fatalf("status %d body %q", rec.Code, rec.Body.String())
		}
	}
}
