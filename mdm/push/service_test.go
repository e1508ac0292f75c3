package push_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sundial-mdm/sundial/internal/cputime"
	"github.com/sundial-mdm/sundial/mdm/push"
	"github.com/sundial-mdm/sundial/mdm/push/apns"
	"github.com/sundial-mdm/sundial/mdm/push/apnsmock"
	"github.com/sundial-mdm/sundial/mdm/push/internal/testcert"
)

// fixture is a Service pushing through the real APNs sender to the mock,
// with an in-memory store and a fake clock.
type fixture struct {
	mock  *apnsmock.Server
	store *memStore
	clock *fakeClock
	svc   *push.Service
	reg   *prometheus.Registry
	topic string
	devs  map[string]push.Target
}

func newFixture(t testing.TB, devices int, opts ...push.Option) *fixture {
	t.Helper()
	ca := testcert.NewCA(t)
	topic := testcert.Topic(t)
	mock := apnsmock.New()
	ts := apnsmock.NewTestServer(mock, ca.Pool())
	t.Cleanup(ts.Close)
	clock := &fakeClock{t: time.Now()}
	sender, err := apns.New(ca.ValidPushCert(t, topic), topic,
		apns.WithURL(ts.URL), apns.WithExtraRoots(ts.Certificate()), apns.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sender.Close)
	f := &fixture{mock: mock, store: newMemStore(), clock: clock, reg: prometheus.NewRegistry(), topic: topic, devs: make(map[string]push.Target)}
	for i := range devices {
		tg := push.Target{EnrollmentID: fmt.Sprintf("dev-%d", i), Topic: topic, Token: testcert.Token(t), PushMagic: fmt.Sprintf("magic-%d", i)}
		f.store.TokenUpdate(tg)
		f.store.SetPending(tg.EnrollmentID, true)
		f.devs[tg.EnrollmentID] = tg
	}
	opts = append([]push.Option{push.WithClock(clock), push.WithRegisterer(f.reg)}, opts...)
	f.svc, err = push.New(sender, f.store, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) delivered(id string) int { return f.mock.Delivered(f.devs[id].Token) }

func (f *fixture) runOnce(t testing.TB) {
	t.Helper()
	if err := f.svc.RunOnce(t.Context()); err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
}

func TestCoalescing(t *testing.T) {
	f := newFixture(t, 3)
	for range 100 {
		f.svc.Notify("dev-0", "dev-1")
	}
	f.svc.Notify("dev-0")
	f.svc.Notify("unknown-device", "")

	f.clock.Advance(push.DefaultCoalesceWindow - time.Millisecond)
	f.runOnce(t)
	if n := f.mock.Stats().Requests; n != 0 {
		t.Fatalf("pushed %d times before the window closed, want 0", n)
	}
	f.clock.Advance(time.Millisecond)
	f.runOnce(t)
	want := map[string]int{"dev-0": 1, "dev-1": 1, "dev-2": 0}
	for id, n := range want {
		if got := f.delivered(id); got != n {
			t.Errorf("%s pushed %d times, want %d", id, got, n)
		}
	}

	// A Notify after the push opens a new window.
	f.svc.Notify("dev-0")
	f.svc.Notify("dev-0")
	f.clock.Advance(push.DefaultCoalesceWindow)
	f.runOnce(t)
	if got := f.delivered("dev-0"); got != 2 {
		t.Errorf("dev-0 pushed %d times after a second window, want 2", got)
	}
	if got := metricValue(t, f.reg, "sundial_push_pushes_total", "outcome", "ok"); got != 3 {
		t.Errorf("ok pushes metric = %v, want 3", got)
	}
	if got := metricValue(t, f.reg, "sundial_push_latency_seconds", "", ""); got != 3 {
		t.Errorf("latency samples = %v, want 3", got)
	}
}

func TestUnregisteredStopsPushing(t *testing.T) {
	tests := []struct {
		status  int
		reason  string
		outcome push.Outcome
	}{
		{http.StatusGone, "Unregistered", push.OutcomeUnregistered},
		{http.StatusBadRequest, "BadDeviceToken", push.OutcomeBadToken},
	}
	for _, tt := range tests {
		t.Run(tt.reason, func(t *testing.T) {
			f := newFixture(t, 2, push.WithCoalesceWindow(0))
			f.mock.FailToken(f.devs["dev-0"].Token, tt.status, tt.reason)
			f.svc.Notify("dev-0", "dev-1")
			f.runOnce(t)

			recs := f.store.records("dev-0")
			if len(recs) != 1 || recs[0].Outcome != tt.outcome || recs[0].Reason != tt.reason || !recs[0].NextRepush.IsZero() {
				t.Fatalf("records %+v, want one %s %s with no re-push", recs, tt.outcome, tt.reason)
			}
			if got := metricValue(t, f.reg, "sundial_push_tokens_invalidated_total", "", ""); got != 1 {
				t.Errorf("tokens invalidated = %v, want 1", got)
			}

			// Neither new work nor time brings the token back.
			requests := f.mock.Stats().Requests
			for range 3 {
				f.svc.Notify("dev-0")
				f.clock.Advance(2 * time.Hour)
				f.runOnce(t)
			}
			if got := f.mock.Stats().Requests - requests; got != 3 {
				// dev-1 stays silent: re-pushed on each run; dev-0 never.
				t.Errorf("%d requests after invalidation, want 3 (dev-1's re-pushes only)", got)
			}
			if n := len(f.store.records("dev-0")); n != 1 {
				t.Errorf("dev-0 pushed %d times, want 1", n)
			}

			// A TokenUpdate makes it pushable again.
			f.mock.ClearToken(f.devs["dev-0"].Token)
			f.store.TokenUpdate(f.devs["dev-0"])
			f.svc.Notify("dev-0")
			f.runOnce(t)
			if got := f.delivered("dev-0"); got != 1 {
				t.Errorf("after TokenUpdate dev-0 delivered %d, want 1", got)
			}
		})
	}
}

func TestBackoffTimeline(t *testing.T) {
	f := newFixture(t, 2)
	start := f.clock.Now()
	f.svc.Notify("dev-0", "dev-1")
	f.clock.Advance(push.DefaultCoalesceWindow)
	f.runOnce(t)
	f.store.CheckIn("dev-1") // dev-1 answers; dev-0 stays silent

	// 1 min, 2, 4, ..., capped at 1 h.
	delays := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60, 60}
	for i, d := range delays {
		d *= time.Minute
		f.clock.Advance(d - time.Second)
		f.runOnce(t)
		if got := f.delivered("dev-0"); got != i+1 {
			t.Fatalf("re-push %d: sent %v early (%d pushes)", i+1, time.Second, got)
		}
		f.clock.Advance(time.Second)
		f.runOnce(t)
		if got := f.delivered("dev-0"); got != i+2 {
			t.Fatalf("re-push %d: %d pushes after %v, want %d", i+1, got, f.clock.Now().Sub(start), i+2)
		}
	}
	recs := f.store.records("dev-0")
	for i, r := range recs {
		if r.Attempt != i+1 {
			t.Errorf("record %d has attempt %d, want %d", i, r.Attempt, i+1)
		}
	}
	if got := f.delivered("dev-1"); got != 1 {
		t.Errorf("dev-1, which checked in, was pushed %d times, want 1", got)
	}

	// Checking in resets the schedule: no more re-pushes.
	f.store.CheckIn("dev-0")
	f.clock.Advance(3 * time.Hour)
	f.runOnce(t)
	if got := f.delivered("dev-0"); got != len(delays)+1 {
		t.Errorf("after check-in: %d pushes, want %d", got, len(delays)+1)
	}
	// New work after the reset starts the backoff again from the base.
	f.svc.Notify("dev-0")
	f.clock.Advance(push.DefaultCoalesceWindow)
	f.runOnce(t)
	recs = f.store.records("dev-0")
	last := recs[len(recs)-1]
	if last.Attempt != 1 || last.NextRepush.Sub(last.At) != push.DefaultBackoffBase {
		t.Errorf("after reset: attempt %d, next re-push in %v; want 1, %v", last.Attempt, last.NextRepush.Sub(last.At), push.DefaultBackoffBase)
	}
}

func TestMaxAttempts(t *testing.T) {
	const max = 4
	f := newFixture(t, 1, push.WithMaxAttempts(max), push.WithBackoff(time.Minute, 10*time.Minute), push.WithCoalesceWindow(0))
	f.svc.Notify("dev-0")
	for range 50 {
		f.runOnce(t)
		f.clock.Advance(10 * time.Minute)
	}
	if got := f.delivered("dev-0"); got != max {
		t.Errorf("silent device pushed %d times, want %d", got, max)
	}
	recs := f.store.records("dev-0")
	if last := recs[len(recs)-1]; !last.NextRepush.IsZero() {
		t.Errorf("last record schedules a re-push at %v, want none", last.NextRepush)
	}
}

func TestRetryThenRecover(t *testing.T) {
	f := newFixture(t, 5, push.WithCoalesceWindow(0))
	f.mock.SetFailure(http.StatusServiceUnavailable, "ServiceUnavailable")
	f.svc.Notify("dev-0", "dev-1", "dev-2", "dev-3", "dev-4")
	f.runOnce(t)
	for id := range f.devs {
		recs := f.store.records(id)
		if len(recs) != 1 || recs[0].Outcome != push.OutcomeRetry || recs[0].NextRepush.Sub(recs[0].At) != push.DefaultBackoffBase {
			t.Fatalf("%s records %+v, want one retry with a re-push after %v", id, recs, push.DefaultBackoffBase)
		}
	}
	f.mock.SetFailure(0, "")
	f.clock.Advance(push.DefaultBackoffBase)
	f.runOnce(t)
	for id := range f.devs {
		if got := f.delivered(id); got != 1 {
			t.Errorf("%s delivered %d after APNs recovered, want 1", id, got)
		}
	}
	if got := metricValue(t, f.reg, "sundial_push_pushes_total", "outcome", "retry"); got != 5 {
		t.Errorf("retry metric = %v, want 5", got)
	}
}

func TestCertErrorPausesAndReports(t *testing.T) {
	var mu sync.Mutex
	var reported []error
	f := newFixture(t, 20, push.WithCoalesceWindow(0), push.WithCertPause(time.Minute),
		push.WithCertErrorHandler(func(err error) {
			mu.Lock()
			defer mu.Unlock()
			reported = append(reported, err)
		}))
	f.mock.SetFailure(http.StatusForbidden, "BadCertificate")
	var ids []string
	for id := range f.devs {
		ids = append(ids, id)
	}
	f.svc.Notify(ids...)
	f.runOnce(t)

	mu.Lock()
	n := len(reported)
	mu.Unlock()
	if n != 1 {
		t.Fatalf("cert error reported %d times for one batch, want 1", n)
	}
	err := f.svc.CertError()
	if err == nil || !strings.Contains(err.Error(), "push certificate") || !strings.Contains(err.Error(), "BadCertificate") {
		t.Fatalf("CertError() = %v, want a message about the push certificate and BadCertificate", err)
	}
	requests := f.mock.Stats().Requests
	if requests != 1 {
		t.Errorf("a refused certificate cost %d requests, want 1", requests)
	}

	// Paused: new work waits, nothing is sent.
	f.svc.Notify("dev-0")
	f.clock.Advance(30 * time.Second)
	f.runOnce(t)
	if got := f.mock.Stats().Requests; got != requests {
		t.Errorf("sent %d requests while paused", got-requests)
	}

	// The operator fixes the certificate; after the pause the waiting
	// work goes out and the error clears.
	f.mock.SetFailure(0, "")
	f.clock.Advance(30 * time.Second)
	f.runOnce(t)
	if got := f.delivered("dev-0"); got != 1 {
		t.Errorf("dev-0 delivered %d after the pause, want 1", got)
	}
	if err := f.svc.CertError(); err != nil {
		t.Errorf("CertError() = %v after a successful push, want nil", err)
	}
}

func TestUnreachableAPNs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ca := testcert.NewCA(t)
	topic := testcert.Topic(t)
	sender, err := apns.New(ca.ValidPushCert(t, topic), topic, apns.WithURL("https://"+addr))
	if err != nil {
		t.Fatal(err)
	}
	store := newMemStore()
	var ids []string
	for i := range 2000 {
		tg := push.Target{EnrollmentID: fmt.Sprintf("dev-%d", i), Token: testcert.Token(t), PushMagic: "m"}
		store.TokenUpdate(tg)
		ids = append(ids, tg.EnrollmentID)
	}
	svc, err := push.New(sender, store, push.WithCoalesceWindow(0))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	svc.Notify(ids...)
	if err := svc.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("2000 pushes to an unreachable APNs took %v, want < 2s", el)
	}
	for _, id := range ids {
		recs := store.records(id)
		if len(recs) != 1 || recs[0].Outcome != push.OutcomeRetry || recs[0].NextRepush.IsZero() {
			t.Fatalf("%s records %+v, want one retry with a re-push", id, recs)
		}
	}
}

func TestNotifyNeverBlocks(t *testing.T) {
	const maxPending = 1000
	sender := &recordingSender{clock: push.SystemClock{}, block: make(chan struct{}), entered: make(chan struct{}, 1)}
	store := newMemStore()
	for i := range 5000 {
		store.TokenUpdate(push.Target{EnrollmentID: fmt.Sprintf("dev-%d", i), Token: []byte{byte(i), byte(i >> 8)}, PushMagic: "m"})
	}
	reg := prometheus.NewRegistry()
	svc, err := push.New(sender, store, push.WithCoalesceWindow(0), push.WithMaxPending(maxPending), push.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()

	svc.Notify("dev-0")
	select {
	case <-sender.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not call the sender")
	}
	// The sender hangs (APNs unreachable). Callers are not held up.
	start := time.Now()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := 1 + g; i < 5000; i += 4 {
				svc.Notify(fmt.Sprintf("dev-%d", i))
			}
		})
	}
	wg.Wait()
	if el := time.Since(start); el > time.Second {
		t.Errorf("5000 Notify calls took %v while the sender hung", el)
	}
	if got := metricValue(t, reg, "sundial_push_pending", "", ""); got != maxPending {
		t.Errorf("pending = %v, want the bound %d", got, maxPending)
	}
	if got := metricValue(t, reg, "sundial_push_notify_dropped_total", "", ""); got != 4999-maxPending {
		t.Errorf("dropped = %v, want %d", got, 4999-maxPending)
	}
	close(sender.block)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// TestRunTimeline drives Run in a synctest bubble: fake time, real timers.
func TestRunTimeline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sender := &recordingSender{clock: push.SystemClock{}}
		store := newMemStore()
		for _, id := range []string{"quiet", "answers"} {
			store.TokenUpdate(push.Target{EnrollmentID: id, Token: []byte(id), PushMagic: "m"})
			store.SetPending(id, true)
		}
		svc, err := push.New(sender, store)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- svc.Run(ctx) }()

		start := time.Now()
		for range 10 {
			svc.Notify("quiet", "answers")
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		store.CheckIn("answers")

		time.Sleep(3 * time.Hour)
		synctest.Wait()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}

		if got := sender.pushTimes("answers"); len(got) != 1 || got[0].Sub(start) != push.DefaultCoalesceWindow {
			t.Errorf("answering device pushed at %v, want once at +%v", got, push.DefaultCoalesceWindow)
		}
		// The quiet device: pushed when the window closed, then re-pushed
		// after 1, 2, 4, ... 60 min, each within one poll interval.
		times := sender.pushTimes("quiet")
		if len(times) == 0 || times[0].Sub(start) != push.DefaultCoalesceWindow {
			t.Fatalf("quiet device first pushed at %v, want +%v", times, push.DefaultCoalesceWindow)
		}
		delay := push.DefaultBackoffBase
		for i := 1; i < len(times); i++ {
			gap := times[i].Sub(times[i-1])
			if gap < delay || gap > delay+push.DefaultPollInterval {
				t.Errorf("re-push %d came %v after the previous one, want %v to %v", i, gap, delay, delay+push.DefaultPollInterval)
			}
			delay = min(2*delay, push.DefaultBackoffCap)
		}
		// 1+2+4+8+16+32 = 63 min, then hourly: 3 h holds 7 or 8 re-pushes.
		if n := len(times) - 1; n < 7 || n > 8 {
			t.Errorf("%d re-pushes in 3 h, want 7 or 8", n)
		}
	})
}

func TestStoreFailureRequeues(t *testing.T) {
	f := newFixture(t, 1, push.WithCoalesceWindow(0))
	f.store.setFailTargets(errors.New("disk on fire"))
	f.svc.Notify("dev-0")
	if err := f.svc.RunOnce(t.Context()); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("RunOnce = %v, want the store error", err)
	}
	f.store.setFailTargets(nil)
	f.runOnce(t)
	if got := f.delivered("dev-0"); got != 1 {
		t.Errorf("after the store recovered: %d pushes, want 1", got)
	}
}

func TestLogsHideSecrets(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f := newFixture(t, 4, push.WithCoalesceWindow(0), push.WithLogger(logger))
	f.mock.FailToken(f.devs["dev-1"].Token, http.StatusGone, "Unregistered")
	f.mock.FailToken(f.devs["dev-2"].Token, http.StatusServiceUnavailable, "ServiceUnavailable")
	f.mock.FailToken(f.devs["dev-3"].Token, http.StatusBadRequest, "BadDeviceToken")
	f.svc.Notify("dev-0", "dev-1", "dev-2", "dev-3")
	f.runOnce(t)
	logs := buf.String()
	if !strings.Contains(logs, "push token invalidated") || !strings.Contains(logs, push.TokenHash(f.devs["dev-1"].Token)) {
		t.Fatalf("logs lack the invalidation with the token hash:\n%s", logs)
	}
	for id, tg := range f.devs {
		for _, secret := range []string{hex.EncodeToString(tg.Token), tg.PushMagic + `"`} {
			if strings.Contains(logs, secret) {
				t.Errorf("logs contain %s's token or push magic", id)
			}
		}
	}
}

func TestNewValidation(t *testing.T) {
	store, sender := newMemStore(), &recordingSender{clock: push.SystemClock{}}
	tests := []struct {
		name string
		opt  push.Option
	}{
		{"nil clock", push.WithClock(nil)},
		{"nil logger", push.WithLogger(nil)},
		{"negative window", push.WithCoalesceWindow(-time.Second)},
		{"zero backoff", push.WithBackoff(0, time.Hour)},
		{"cap below base", push.WithBackoff(time.Hour, time.Minute)},
		{"negative attempts", push.WithMaxAttempts(-1)},
		{"zero batch", push.WithBatchSize(0)},
		{"zero pending", push.WithMaxPending(0)},
		{"zero poll", push.WithPollInterval(0)},
		{"negative pause", push.WithCertPause(-time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := push.New(sender, store, tt.opt); err == nil {
				t.Error("New succeeded, want an error")
			}
		})
	}
	reg := prometheus.NewRegistry()
	if _, err := push.New(sender, store, push.WithRegisterer(reg)); err != nil {
		t.Fatalf("New: %v", err)
	}
	if _, err := push.New(sender, store, push.WithRegisterer(reg)); err == nil {
		t.Error("registering the metrics twice succeeded, want an error")
	}
}

func TestTokenHash(t *testing.T) {
	a, b := []byte{1, 2, 3}, []byte{1, 2, 4}
	if ha := push.TokenHash(a); len(ha) != 8 || ha == push.TokenHash(b) || ha != push.TokenHash(bytes.Clone(a)) {
		t.Errorf("TokenHash: %q, %q", ha, push.TokenHash(b))
	}
	if strings.Contains(hex.EncodeToString(a), push.TokenHash(a)) {
		t.Error("TokenHash reveals the token")
	}
}

func BenchmarkNotify(b *testing.B) {
	svc, err := push.New(&recordingSender{clock: push.SystemClock{}}, newMemStore(), push.WithMaxPending(1<<30))
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, 1<<16)
	for i := range ids {
		ids[i] = fmt.Sprintf("enrollment-%d", i)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			svc.Notify(ids[i%len(ids)])
			i++
		}
	})
}

// BenchmarkService100k pushes 100,000 devices through the whole path:
// Notify, coalescing, the store, the APNs sender and the mock over loopback
// HTTP/2 with TLS. It reports pushes per second.
func BenchmarkService100k(b *testing.B) {
	const devices = 100_000
	f := newFixture(b, devices, push.WithCoalesceWindow(0), push.WithMaxPending(devices))
	ids := make([]string, 0, devices)
	for id := range f.devs {
		ids = append(ids, id)
	}
	var elapsed, cpu time.Duration
	for b.Loop() {
		for _, id := range ids {
			f.store.CheckIn(id)
		}
		start, cpu0 := time.Now(), cputime.Process()
		f.svc.Notify(ids...)
		if err := f.svc.RunOnce(context.Background()); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
		cpu += cputime.Process() - cpu0
	}
	if got := f.mock.Stats().Delivered; got != uint64(b.N*devices) {
		b.Fatalf("delivered %d, want %d", got, b.N*devices)
	}
	b.ReportMetric(float64(b.N*devices)/elapsed.Seconds(), "pushes/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*devices), "cpu-µs/push")
}

func TestPushNow(t *testing.T) {
	f := newFixture(t, 3, push.WithBatchSize(2))
	f.mock.FailToken(f.devs["dev-2"].Token, http.StatusGone, "Unregistered")
	results, err := f.svc.Push(t.Context(), "dev-0", "unknown", "dev-1", "dev-2")
	if err != nil {
		t.Fatal(err)
	}
	got := make(map[string]push.Outcome)
	for _, r := range results {
		got[r.EnrollmentID] = r.Outcome
	}
	want := map[string]push.Outcome{"dev-0": push.OutcomeOK, "dev-1": push.OutcomeOK, "dev-2": push.OutcomeUnregistered}
	if len(got) != len(want) {
		t.Errorf("results %v, want %v", got, want)
	}
	for id, o := range want {
		if got[id] != o {
			t.Errorf("%s: %s, want %s", id, got[id], o)
		}
		if recs := f.store.records(id); len(recs) != 1 || recs[0].Outcome != o {
			t.Errorf("%s: records %+v, want one %s", id, recs, o)
		}
	}
	// Immediate: no coalescing window, no RunOnce.
	if f.delivered("dev-0") != 1 || f.delivered("dev-1") != 1 {
		t.Errorf("delivered %d, %d; want 1, 1", f.delivered("dev-0"), f.delivered("dev-1"))
	}
}

// countingStore counts DueRepushes calls.
type countingStore struct {
	*memStore
	mu    sync.Mutex
	polls int
}

func (c *countingStore) DueRepushes(ctx context.Context, now time.Time, limit int) ([]string, error) {
	c.mu.Lock()
	c.polls++
	c.mu.Unlock()
	return c.memStore.DueRepushes(ctx, now, limit)
}

// TestRunCertErrorTimeline: with a refused certificate, Run neither spins
// nor floods APNs, and reports the problem a bounded number of times.
func TestRunCertErrorTimeline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sender := &recordingSender{clock: push.SystemClock{}, outcomes: map[string]push.Outcome{}}
		store := &countingStore{memStore: newMemStore()}
		var ids []string
		for i := range 50 {
			id := fmt.Sprintf("dev-%d", i)
			store.TokenUpdate(push.Target{EnrollmentID: id, Token: []byte(id), PushMagic: "m"})
			store.SetPending(id, true)
			sender.outcomes[id] = push.OutcomeCertError
			ids = append(ids, id)
		}
		var reports int
		var mu sync.Mutex
		svc, err := push.New(sender, store, push.WithCertErrorHandler(func(error) {
			mu.Lock()
			reports++
			mu.Unlock()
		}))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- svc.Run(ctx) }()
		svc.Notify(ids...)
		const span = 2 * time.Hour
		time.Sleep(span)
		synctest.Wait()
		cancel()
		<-done

		if svc.CertError() == nil {
			t.Error("CertError() = nil, want the refusal")
		}
		// At most one batch per pause, and one poll per poll interval
		// (plus the wake-ups at pause ends).
		maxBatches := int(span/push.DefaultCertPause) + 1
		if n := len(sender.calls); n == 0 || n > maxBatches {
			t.Errorf("%d batches sent in %v, want 1 to %d", n, span, maxBatches)
		}
		if reports != len(sender.calls) {
			t.Errorf("%d reports for %d failed batches, want one each", reports, len(sender.calls))
		}
		maxPolls := int(span/push.DefaultPollInterval) + maxBatches + 2
		if store.polls > maxPolls {
			t.Errorf("%d store polls in %v, want at most %d", store.polls, span, maxPolls)
		}
	})
}

func TestSetRepushOff(t *testing.T) {
	f := newFixture(t, 1)
	f.svc.Notify("dev-0")
	f.clock.Advance(push.DefaultCoalesceWindow)
	f.runOnce(t)           // the first push; dev-0 stays silent
	f.svc.SetRepush(false) // not the scheduler leader
	f.clock.Advance(2 * time.Minute)
	f.runOnce(t)
	if got := f.delivered("dev-0"); got != 1 {
		t.Errorf("re-push off: %d pushes, want 1", got)
	}
	f.svc.Notify("dev-0") // its own new work is still pushed
	f.clock.Advance(push.DefaultCoalesceWindow)
	f.runOnce(t)
	if got := f.delivered("dev-0"); got != 2 {
		t.Errorf("new work with re-push off: %d pushes, want 2", got)
	}
	f.svc.SetRepush(true) // became leader
	f.clock.Advance(2 * time.Minute)
	f.runOnce(t)
	if got := f.delivered("dev-0"); got != 3 {
		t.Errorf("re-push on: %d pushes, want 3", got)
	}
}

// readySender is a recordingSender that can be made unable to push, like a
// server without a push certificate.
type readySender struct {
	*recordingSender
	ready atomic.Bool
}

func (r *readySender) Ready() bool { return r.ready.Load() }

func (c *countingStore) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.polls
}

// runIdle starts Run on svc in the synctest bubble and returns its stop.
func runIdle(t *testing.T, svc *push.Service) (stop func()) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

// checkNoPolls lets an hour pass and fails if the store was asked for due
// re-pushes meanwhile.
func checkNoPolls(t *testing.T, store *countingStore, when string) {
	t.Helper()
	before := store.count()
	time.Sleep(time.Hour)
	synctest.Wait()
	if n := store.count() - before; n != 0 {
		t.Errorf("%d re-push polls %s, want 0", n, when)
	}
}

// TestRunSleepsWithoutSender: while the Sender cannot push, Run does not
// look for due re-pushes at all; once it can (CertChanged), the silent
// device is re-pushed at once. New work is still handed to the Sender.
func TestRunSleepsWithoutSender(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sender := &readySender{recordingSender: &recordingSender{clock: push.SystemClock{}}}
		store := &countingStore{memStore: newMemStore()}
		store.TokenUpdate(push.Target{EnrollmentID: "silent", Token: []byte("silent"), PushMagic: "m"})
		store.SetPending("silent", true)
		store.RecordPushes(t.Context(), []push.Record{{EnrollmentID: "silent", Attempt: 1, NextRepush: time.Now()}})
		svc, err := push.New(sender, store)
		if err != nil {
			t.Fatal(err)
		}
		stop := runIdle(t, svc)
		defer stop()

		checkNoPolls(t, store, "in an hour without a sender")
		if n := len(sender.pushTimes("silent")); n != 0 {
			t.Errorf("%d pushes without a sender, want 0", n)
		}

		sender.ready.Store(true)
		at := time.Now()
		svc.CertChanged()
		synctest.Wait()
		if n := store.count(); n != 1 {
			t.Errorf("%d re-push polls right after the sender became ready, want 1", n)
		}
		if got := sender.pushTimes("silent"); len(got) != 1 || !got[0].Equal(at) {
			t.Errorf("pushes at %v, want the due re-push at once (%v)", got, at)
		}

		// Unable again: new work is still handed to the Sender (which
		// records the failure), silent devices are not polled for.
		sender.ready.Store(false)
		svc.Notify("silent")
		checkNoPolls(t, store, "in the hour after Notify without a sender")
		if n := len(sender.pushTimes("silent")); n != 2 {
			t.Errorf("%d pushes after Notify without a sender, want 2", n)
		}
	})
}

// TestRunSleepsWithRepushOff: a replica that does not re-push does not
// poll for re-pushes; turned on, it polls at once and then every interval.
func TestRunSleepsWithRepushOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &countingStore{memStore: newMemStore()}
		svc, err := push.New(&recordingSender{clock: push.SystemClock{}}, store)
		if err != nil {
			t.Fatal(err)
		}
		svc.SetRepush(false)
		stop := runIdle(t, svc)
		defer stop()
		checkNoPolls(t, store, "in an hour with re-push off")
		svc.SetRepush(true)
		synctest.Wait()
		if n := store.count(); n != 1 {
			t.Errorf("%d re-push polls right after re-push was turned on, want 1", n)
		}
		time.Sleep(10*push.DefaultPollInterval + time.Second)
		synctest.Wait()
		if n := store.count(); n != 11 {
			t.Errorf("%d re-push polls in 10 intervals after, want 11", n)
		}
	})
}
