package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/internal/seal"
	"github.com/sundial-mdm/sundial/internal/webhook"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/bolt"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// receiver is an httptest server that verifies every delivery as a real
// receiver would, and can be told to be down.
type receiver struct {
	srv    *httptest.Server
	secret []byte
	clk    *clock.Fake

	mu     sync.Mutex
	down   bool
	events []webhook.Event
	bad    []error
}

func newReceiver(t *testing.T, secret string, clk *clock.Fake) *receiver {
	r := &receiver{secret: []byte(secret), clk: clk}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		if err := webhook.Verify(r.secret, req.Header.Get(webhook.HeaderSignature), body, r.clk.Now(), webhook.DefaultTolerance); err != nil {
			r.bad = append(r.bad, err)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var e webhook.Event
		if err := json.Unmarshal(body, &e); err != nil || e.ID != req.Header.Get(webhook.HeaderEventID) || e.Type != req.Header.Get(webhook.HeaderEventType) {
			r.bad = append(r.bad, errors.New("envelope and headers disagree"))
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		r.events = append(r.events, e)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) setDown(v bool) { r.mu.Lock(); r.down = v; r.mu.Unlock() }

func (r *receiver) got() ([]webhook.Event, []error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]webhook.Event(nil), r.events...), append([]error(nil), r.bad...)
}

type fixture struct {
	store  *bolt.Store
	sealer *seal.Sealer
	clk    *clock.Fake
	w      *webhook.Worker
}

func newFixture(t *testing.T) *fixture {
	s, err := bolt.Open(filepath.Join(t.TempDir(), "sundial.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	sl, err := seal.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(t0)
	return &fixture{store: s, sealer: sl, clk: clk, w: &webhook.Worker{Outbox: s, Endpoints: s, Opener: sl, Clock: clk}}
}

func (f *fixture) addEndpoint(t *testing.T, id, url, secret string, events ...string) storage.WebhookEndpoint {
	sealed, err := f.sealer.Seal([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	e := storage.WebhookEndpoint{ID: id, URL: url, Events: events, Secret: sealed, Created: f.clk.Now()}
	if err := f.store.PutWebhookEndpoint(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	return e
}

func (f *fixture) emit(t *testing.T, events ...webhook.Event) {
	eps, err := f.store.WebhookEndpoints(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ds, err := webhook.Deliveries(events, eps)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.EnqueueWebhooks(t.Context(), ds); err != nil {
		t.Fatal(err)
	}
}

func phaseEvent(t *testing.T, dev string, from, to softwareupdate.Phase, at time.Time) []webhook.Event {
	c := &scheduler.Commit{State: &scheduler.State{DeviceID: dev},
		History: []scheduler.Transition{{At: at, Kind: scheduler.EventPhase, From: from, To: to, Target: "15.4"}}}
	return webhook.CommitEvents(c, at)
}

func TestSignVerify(t *testing.T) {
	secret, body := []byte("s3cret"), []byte(`{"id":"1"}`)
	h := webhook.Sign(secret, t0, body)
	if err := webhook.Verify(secret, h, body, t0.Add(time.Minute), webhook.DefaultTolerance); err != nil {
		t.Fatalf("good signature: %v", err)
	}
	cases := []struct {
		name   string
		secret []byte
		header string
		body   []byte
		now    time.Time
		want   error
	}{
		{"other body", secret, h, []byte(`{"id":"2"}`), t0, webhook.ErrSignatureMismatch},
		{"other secret", []byte("nope"), h, body, t0, webhook.ErrSignatureMismatch},
		{"replayed later", secret, h, body, t0.Add(6 * time.Minute), webhook.ErrStale},
		{"from the future", secret, h, body, t0.Add(-6 * time.Minute), webhook.ErrStale},
		{"no timestamp", secret, "v1=00", body, t0, webhook.ErrBadSignatureHeader},
		{"no signature", secret, "t=1", body, t0, webhook.ErrBadSignatureHeader},
		{"garbage", secret, "hello", body, t0, webhook.ErrBadSignatureHeader},
		// Moving the timestamp forward to dodge the replay check breaks the MAC.
		{"retimed", secret, "t=" + "1772442360" + h[len("t=1772442000"):], body, t0.Add(6 * time.Minute), webhook.ErrSignatureMismatch},
	}
	for _, c := range cases {
		if err := webhook.Verify(c.secret, c.header, c.body, c.now, webhook.DefaultTolerance); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

func TestCommitEvents(t *testing.T) {
	evs := phaseEvent(t, "D1", softwareupdate.PhaseEnforce, softwareupdate.PhaseCompliant, t0)
	if len(evs) != 2 || evs[0].Type != webhook.TypePhaseChanged || evs[1].Type != webhook.TypeCompliant || evs[0].ID == evs[1].ID {
		t.Fatalf("events = %+v", evs)
	}
	var d webhook.PhaseData
	if err := json.Unmarshal(evs[1].Data, &d); err != nil || d.DeviceID != "D1" || d.From != softwareupdate.PhaseEnforce || d.To != softwareupdate.PhaseCompliant || d.Target != "15.4" {
		t.Fatalf("data = %+v, %v", d, err)
	}
	if evs := phaseEvent(t, "D1", softwareupdate.PhaseCountdown, softwareupdate.PhaseFailed, t0); len(evs) != 2 || evs[1].Type != webhook.TypeFailed {
		t.Fatalf("failed events = %+v", evs)
	}
	c := &scheduler.Commit{State: &scheduler.State{DeviceID: "D1"}, History: []scheduler.Transition{{Kind: scheduler.EventStep, Step: "ddm"}}}
	if evs := webhook.CommitEvents(c, t0); len(evs) != 0 {
		t.Fatalf("a step gave events %+v", evs)
	}
}

func TestDeliverySignedOverHTTP(t *testing.T) {
	f := newFixture(t)
	all := newReceiver(t, "secret-all", f.clk)
	failedOnly := newReceiver(t, "secret-failed", f.clk)
	f.addEndpoint(t, "all", all.srv.URL, "secret-all")
	f.addEndpoint(t, "failed", failedOnly.srv.URL, "secret-failed", webhook.TypeFailed)
	f.emit(t, phaseEvent(t, "D1", softwareupdate.PhasePending, softwareupdate.PhaseNotify, t0)...)
	f.emit(t, phaseEvent(t, "D2", softwareupdate.PhaseEnforce, softwareupdate.PhaseFailed, t0)...)
	if err := f.w.Pass(t.Context()); err != nil {
		t.Fatal(err)
	}
	got, bad := all.got()
	if len(bad) != 0 || len(got) != 3 {
		t.Fatalf("all: %d events, refused %v", len(got), bad)
	}
	gotF, bad := failedOnly.got()
	if len(bad) != 0 || len(gotF) != 1 || gotF[0].Type != webhook.TypeFailed {
		t.Fatalf("failed-only: %+v, refused %v", gotF, bad)
	}
	// The same event reaches both receivers under one ID. The outbox
	// orders deliveries due together by their (random) IDs, so look for it
	// anywhere.
	if !slices.ContainsFunc(got, func(e webhook.Event) bool { return e.ID == gotF[0].ID && e.Type == webhook.TypeFailed }) {
		t.Fatalf("event IDs differ across endpoints: %s", gotF[0].ID)
	}
	if due, _ := f.store.DueWebhooks(t.Context(), t0.Add(time.Hour), 10); len(due) != 0 {
		t.Fatalf("delivered events left in the outbox: %+v", due)
	}
	if s := f.w.Stats(); s.Delivered != 4 || s.Failed != 0 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestWrongSecretIsRetriedNotDropped(t *testing.T) {
	f := newFixture(t)
	r := newReceiver(t, "the-receivers-secret", f.clk)
	f.addEndpoint(t, "r", r.srv.URL, "a-different-secret")
	f.emit(t, phaseEvent(t, "D1", softwareupdate.PhasePending, softwareupdate.PhaseNotify, t0)...)
	if err := f.w.Pass(t.Context()); err != nil {
		t.Fatal(err)
	}
	due, _ := f.store.DueWebhooks(t.Context(), t0.Add(time.Hour), 10)
	if _, bad := r.got(); len(bad) != 1 || len(due) != 1 || due[0].Attempts != 1 || due[0].LastErr != "receiver answered 401" {
		t.Fatalf("refused %v; outbox %+v", bad, due)
	}
}

func TestBackoff(t *testing.T) {
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second}
	for i, w := range want {
		if got := webhook.Backoff(i+1, 10*time.Second, time.Hour); got != w {
			t.Errorf("Backoff(%d) = %v, want %v", i+1, got, w)
		}
	}
	if got := webhook.Backoff(60, 10*time.Second, time.Hour); got != time.Hour {
		t.Errorf("Backoff(60) = %v, want the 1h cap", got)
	}
}

// A receiver down for six hours: each pass on the fake clock attempts only
// what is due, the delays double up to the cap, a healthy receiver keeps
// getting its events meanwhile, and once back the down one gets every
// event exactly as queued.
func TestReceiverDownForHours(t *testing.T) {
	f := newFixture(t)
	f.w.MinBackoff, f.w.MaxBackoff = 10*time.Second, 30*time.Minute
	downR := newReceiver(t, "s-down", f.clk)
	upR := newReceiver(t, "s-up", f.clk)
	f.addEndpoint(t, "down", downR.srv.URL, "s-down")
	f.addEndpoint(t, "up", upR.srv.URL, "s-up")
	downR.setDown(true)

	const n = 20
	var ids []string
	for i := range n {
		evs := phaseEvent(t, "D"+string(rune('A'+i)), softwareupdate.PhasePending, softwareupdate.PhaseNotify, t0)
		ids = append(ids, evs[0].ID)
		f.emit(t, evs...)
	}
	var attempts []time.Time
	for f.clk.Now().Before(t0.Add(6 * time.Hour)) {
		before := f.w.Stats().Failed
		if err := f.w.Pass(t.Context()); err != nil {
			t.Fatal(err)
		}
		if f.w.Stats().Failed > before {
			attempts = append(attempts, f.clk.Now())
		}
		f.clk.Advance(5 * time.Second)
	}
	if got, _ := upR.got(); len(got) != n {
		t.Fatalf("the healthy receiver got %d of %d while the other was down", len(got), n)
	}
	// One attempt per backoff step: 10s, 20s, 40s ... capped at 30 min.
	for i := 1; i < len(attempts); i++ {
		gap := attempts[i].Sub(attempts[i-1])
		want := webhook.Backoff(i, 10*time.Second, 30*time.Minute)
		if gap < want || gap > want+5*time.Second {
			t.Fatalf("attempt %d came %v after the previous, want %v (+ pass interval)", i+1, gap, want)
		}
	}
	if len(attempts) < 10 || len(attempts) > 25 {
		t.Fatalf("%d attempts in six hours", len(attempts))
	}
	downR.setDown(false)
	f.clk.Advance(30 * time.Minute)
	if err := f.w.Pass(t.Context()); err != nil {
		t.Fatal(err)
	}
	got, bad := downR.got()
	if len(bad) != 0 || len(got) != n {
		t.Fatalf("after recovery: %d of %d, refused %v", len(got), n, bad)
	}
	seen := map[string]bool{}
	for _, e := range got {
		seen[e.ID] = true
	}
	for _, id := range ids {
		if !seen[id] {
			t.Fatalf("event %s lost", id)
		}
	}
}

// A receiver dead for longer than MaxAge, or far behind, cannot grow the
// outbox forever: old and excess deliveries are dropped and counted.
func TestOutboxBounded(t *testing.T) {
	f := newFixture(t)
	f.w.MaxAge, f.w.MaxPerEndpoint = 24*time.Hour, 5
	dead := newReceiver(t, "s", f.clk)
	dead.setDown(true)
	f.addEndpoint(t, "dead", dead.srv.URL, "s")
	for range 8 {
		f.emit(t, phaseEvent(t, "D1", softwareupdate.PhasePending, softwareupdate.PhaseNotify, f.clk.Now())...)
		f.clk.Advance(time.Minute)
	}
	if err := f.w.Pass(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s := f.w.Stats(); s.Dropped != 3 {
		t.Fatalf("dropped %d beyond the per-endpoint cap, want 3", s.Dropped)
	}
	f.clk.Advance(25 * time.Hour)
	if err := f.w.Pass(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s := f.w.Stats(); s.Dropped != 8 {
		t.Fatalf("dropped %d after a day, want 8", s.Dropped)
	}
	if due, _ := f.store.DueWebhooks(t.Context(), f.clk.Now().Add(48*time.Hour), 100); len(due) != 0 {
		t.Fatalf("outbox still holds %d", len(due))
	}
}

// A delivery whose endpoint is gone (removed while a commit fanned out to
// it on another replica) is dropped, not retried forever.
func TestRemovedEndpointIsNotRetried(t *testing.T) {
	f := newFixture(t)
	r := newReceiver(t, "s", f.clk)
	f.addEndpoint(t, "gone", r.srv.URL, "s")
	if err := f.store.DeleteWebhookEndpoint(t.Context(), "gone"); err != nil {
		t.Fatal(err)
	}
	ds, err := webhook.Deliveries(phaseEvent(t, "D1", softwareupdate.PhasePending, softwareupdate.PhaseNotify, t0),
		[]storage.WebhookEndpoint{{ID: "gone"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.EnqueueWebhooks(t.Context(), ds); err != nil {
		t.Fatal(err)
	}
	if err := f.w.Pass(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.got(); len(got) != 0 {
		t.Fatalf("a removed endpoint got %d events", len(got))
	}
	if due, _ := f.store.DueWebhooks(t.Context(), t0.Add(time.Hour), 10); len(due) != 0 {
		t.Fatalf("outbox still holds %+v", due)
	}
}

// countingOutbox counts the prunes of a real outbox.
type countingOutbox struct {
	webhook.Outbox
	prunes int
}

func (o *countingOutbox) PruneWebhooks(ctx context.Context, olderThan time.Time, maxPerEndpoint int) (int, error) {
	o.prunes++
	return o.Outbox.PruneWebhooks(ctx, olderThan, maxPerEndpoint)
}

// Passes run every few seconds; the outbox is pruned at most once every
// PruneEvery, and a delivery past MaxAge is still dropped by the next prune.
func TestPruneEvery(t *testing.T) {
	f := newFixture(t)
	out := &countingOutbox{Outbox: f.store}
	f.w.Outbox, f.w.MaxAge, f.w.PruneEvery = out, time.Hour, time.Minute
	dead := newReceiver(t, "s", f.clk)
	dead.setDown(true)
	f.addEndpoint(t, "dead", dead.srv.URL, "s")
	f.emit(t, phaseEvent(t, "D1", softwareupdate.PhasePending, softwareupdate.PhaseNotify, f.clk.Now())...)
	for range 30 { // a minute of passes, 2 s apart
		if err := f.w.Pass(t.Context()); err != nil {
			t.Fatal(err)
		}
		f.clk.Advance(2 * time.Second)
	}
	if out.prunes != 1 {
		t.Errorf("%d prunes in a minute of passes, want 1", out.prunes)
	}
	f.clk.Advance(2 * time.Hour)
	if err := f.w.Pass(t.Context()); err != nil {
		t.Fatal(err)
	}
	if out.prunes != 2 || f.w.Stats().Dropped != 1 {
		t.Errorf("after MaxAge: %d prunes, %d dropped; want 2 and 1", out.prunes, f.w.Stats().Dropped)
	}
}

// On a bbolt outbox, Run sleeps while the outbox is empty and is woken by
// the commit that adds a delivery: here the poll interval is an hour, so
// only the wake can deliver.
func TestRunWokenByEnqueue(t *testing.T) {
	f := newFixture(t)
	r := newReceiver(t, "s", f.clk)
	f.addEndpoint(t, "ep", r.srv.URL, "s")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.w.Run(ctx, time.Hour, func(err error) { t.Error(err) })
	}()
	defer func() { cancel(); <-done }()
	time.Sleep(50 * time.Millisecond) // the first pass finds the outbox empty
	f.emit(t, phaseEvent(t, "D1", softwareupdate.PhasePending, softwareupdate.PhaseNotify, f.clk.Now())...)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if got, _ := r.got(); len(got) == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the delivery was not made within 10 s of its enqueue")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
