package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/certs"
	"github.com/sundial-mdm/sundial/certs/certstest"
	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/push"
	"github.com/sundial-mdm/sundial/mdm/push/apnsmock"
	"github.com/sundial-mdm/sundial/storage/bolt"
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

// BenchmarkPush100k measures pushes per second from the push service over
// its real bbolt store and apns2 sender to the APNs mock over loopback
// (HTTP/2, TLS), for 100,000 enrolled devices woken at once.
func BenchmarkPush100k(b *testing.B) {
	const n = 100_000
	store, err := bolt.Open(filepath.Join(b.TempDir(), "sundial.db"), &bolt.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	ids := make([]string, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 512)
	t0 := time.Now()
	for i := range n {
		ids[i] = fmt.Sprintf("D%08d-0000-4000-8000-000000000000", i)
		wg.Add(1)
		sem <- struct{}{}
		go func(id string, i int) {
			defer wg.Done()
			defer func() { <-sem }()
			msg := &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: id}, MessageType: mdm.Authenticate, Topic: testTopic}
			if err := store.Authenticate(ctx, id, msg, fmt.Sprintf("hash%d", i), t0); err != nil {
				b.Error(err)
				return
			}
			tok := make([]byte, 32)
			copy(tok, id)
			msg = &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: id}, MessageType: mdm.TokenUpdate, Topic: testTopic, Token: tok, PushMagic: "magic-" + id}
			if _, err := store.TokenUpdate(ctx, id, msg, nil, t0); err != nil {
				b.Error(err)
			}
		}(ids[i], i)
	}
	wg.Wait()
	b.Logf("enrolled %d devices in the store in %v", n, time.Since(t0).Round(time.Millisecond))

	mock := apnsmock.New(apnsmock.WithBuffer(16))
	ms := apnsmock.NewTestServer(mock, nil)
	defer ms.Close()
	certPEM, keyPEM := certstest.NewPushCert(testTopic, t0.Add(-time.Hour), t0.Add(24*time.Hour))
	pc, err := certs.LoadPushCertPEM(certPEM, keyPEM)
	if err != nil {
		b.Fatal(err)
	}
	mgr := newPushManager(slog.New(slog.DiscardHandler), clock.System{}, ms.URL, []*x509.Certificate{ms.Certificate()}, "")
	if err := mgr.Set(pc, false); err != nil {
		b.Fatal(err)
	}
	defer mgr.Close()
	svc, err := push.New(mgr, store, push.WithCoalesceWindow(time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go svc.Run(runCtx)
	b.ResetTimer()
	for range b.N {
		mock.Reset()
		start := time.Now()
		svc.Notify(ids...)
		for mock.Stats().Delivered < n {
			if time.Since(start) > 5*time.Minute {
				b.Fatalf("only %d pushes delivered in 5 minutes", mock.Stats().Delivered)
			}
			time.Sleep(5 * time.Millisecond)
		}
		el := time.Since(start)
		b.ReportMetric(float64(n)/el.Seconds(), "pushes/s")
	}
	b.StopTimer()
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MB")
}
