package push

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of the Service options.
const (
	DefaultCoalesceWindow = time.Second
	DefaultBackoffBase    = time.Minute
	DefaultBackoffCap     = time.Hour
	DefaultMaxAttempts    = 200
	DefaultBatchSize      = 1000
	DefaultMaxPending     = 1 << 18
	DefaultPollInterval   = 15 * time.Second
	DefaultCertPause      = time.Minute
)

// Service decides when to push. Callers say that a device has new work with
// Notify; Run sends the pushes.
//
//   - Coalescing: the first Notify for a device opens a window (one second by
//     default); every Notify for that device until the window closes is
//     folded into one push, sent when it closes.
//   - Re-push: every push is recorded with a re-push time. A device that stays
//     silent with pending work is pushed again at base, 2×base, 4×base, …,
//     capped (1 min, 2, 4, … 1 h by default): with the defaults at most 6 + 24
//     pushes a day, and none after MaxAttempts pushes without an answer. The
//     check-in path resets the schedule when the device connects (see Store).
//     Retry, error and certificate outcomes follow the same backoff.
//   - Unregistered and bad tokens are recorded so that the Store stops
//     returning them until the next TokenUpdate.
//   - A certificate error is reported (WithCertErrorHandler, CertError) and
//     pauses all sending for a while instead of hammering APNs with a refused
//     certificate.
//
// Notify never blocks on I/O: the coalescing queue is bounded (MaxPending) and
// requests beyond it are dropped and counted.
type Service struct {
	sender Sender
	store  Store
	clock  Clock
	logger *slog.Logger

	noRepush atomic.Bool // see SetRepush

	window      time.Duration
	backoffBase time.Duration
	backoffCap  time.Duration
	maxAttempts int
	batchSize   int
	maxPending  int
	poll        time.Duration
	certPause   time.Duration
	onCertError func(error)
	reg         prometheus.Registerer

	metrics *metrics
	wake    chan struct{}

	mu          sync.Mutex
	pending     map[string]struct{} // ids in queue
	queue       []queued            // FIFO; due times are non-decreasing
	head        int                 // first live element of queue
	dropped     int                 // drops since last logged
	pausedUntil time.Time
	certErr     error
}

type queued struct {
	id  string
	due time.Time
}

// Option configures a Service.
type Option func(*Service)

// WithClock sets the clock (default SystemClock).
func WithClock(c Clock) Option { return func(s *Service) { s.clock = c } }

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.logger = l } }

// WithCoalesceWindow sets how long Notify requests for one device are
// gathered into one push (default one second; zero pushes at the next run).
func WithCoalesceWindow(d time.Duration) Option { return func(s *Service) { s.window = d } }

// WithBackoff sets the first re-push delay and the cap (default 1 min, 1 h).
func WithBackoff(base, max time.Duration) Option {
	return func(s *Service) { s.backoffBase, s.backoffCap = base, max }
}

// WithMaxAttempts sets how many pushes without an answer are sent before
// re-pushing stops until the device connects or gets new work (default 200;
// 0 means no limit).
func WithMaxAttempts(n int) Option { return func(s *Service) { s.maxAttempts = n } }

// WithBatchSize sets how many targets are handed to the Sender at once and
// how many due re-pushes are read per run (default 1000).
func WithBatchSize(n int) Option { return func(s *Service) { s.batchSize = n } }

// WithMaxPending bounds the coalescing queue (default 262144 devices).
func WithMaxPending(n int) Option { return func(s *Service) { s.maxPending = n } }

// WithPollInterval sets how often Run looks for due re-pushes (default 15 s).
func WithPollInterval(d time.Duration) Option { return func(s *Service) { s.poll = d } }

// WithCertPause sets how long sending stops after a certificate error
// (default 1 min).
func WithCertPause(d time.Duration) Option { return func(s *Service) { s.certPause = d } }

// WithCertErrorHandler sets a function called, at most once per batch, when
// APNs refuses the push certificate. It must not block.
func WithCertErrorHandler(f func(error)) Option { return func(s *Service) { s.onCertError = f } }

// WithRegisterer registers the Service's metrics (nil: not registered).
func WithRegisterer(r prometheus.Registerer) Option { return func(s *Service) { s.reg = r } }

// New returns a Service that pushes with sender and keeps state in store.
// A nil sender or store is a programming error and panics.
func New(sender Sender, store Store, opts ...Option) (*Service, error) {
	if sender == nil || store == nil {
		panic("push: New needs a sender and a store")
	}
	s := &Service{
		sender:      sender,
		store:       store,
		clock:       SystemClock{},
		logger:      slog.New(slog.DiscardHandler),
		window:      DefaultCoalesceWindow,
		backoffBase: DefaultBackoffBase,
		backoffCap:  DefaultBackoffCap,
		maxAttempts: DefaultMaxAttempts,
		batchSize:   DefaultBatchSize,
		maxPending:  DefaultMaxPending,
		poll:        DefaultPollInterval,
		certPause:   DefaultCertPause,
		wake:        make(chan struct{}, 1),
		pending:     make(map[string]struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	switch {
	case s.clock == nil:
		return nil, errors.New("push service: nil clock")
	case s.logger == nil:
		return nil, errors.New("push service: nil logger")
	case s.window < 0:
		return nil, fmt.Errorf("push service: negative coalesce window %v", s.window)
	case s.backoffBase <= 0 || s.backoffCap < s.backoffBase:
		return nil, fmt.Errorf("push service: backoff base %v and cap %v: want 0 < base <= cap", s.backoffBase, s.backoffCap)
	case s.maxAttempts < 0:
		return nil, fmt.Errorf("push service: negative max attempts %d", s.maxAttempts)
	case s.batchSize <= 0:
		return nil, fmt.Errorf("push service: batch size %d: want > 0", s.batchSize)
	case s.maxPending <= 0:
		return nil, fmt.Errorf("push service: max pending %d: want > 0", s.maxPending)
	case s.poll <= 0:
		return nil, fmt.Errorf("push service: poll interval %v: want > 0", s.poll)
	case s.certPause < 0:
		return nil, fmt.Errorf("push service: negative cert pause %v", s.certPause)
	}
	s.metrics = newMetrics(func() float64 {
		s.mu.Lock()
		defer s.mu.Unlock()
		return float64(len(s.pending))
	})
	if err := s.metrics.register(s.reg); err != nil {
		return nil, fmt.Errorf("push service: %w", err)
	}
	return s, nil
}

// Notify asks for a push to each enrollment in ids, which has new work. It
// never blocks: requests for a device already waiting are coalesced, and
// requests beyond the queue bound are dropped (and counted).
func (s *Service) Notify(ids ...string) {
	if len(ids) == 0 {
		return
	}
	due := s.clock.Now().Add(s.window)
	s.mu.Lock()
	for _, id := range ids {
		if id == "" {
			continue
		}
		if _, ok := s.pending[id]; ok {
			continue
		}
		if len(s.pending) >= s.maxPending {
			s.dropped++
			s.metrics.dropped.Inc()
			continue
		}
		s.pending[id] = struct{}{}
		s.queue = append(s.queue, queued{id: id, due: due})
	}
	s.mu.Unlock()
	s.kick()
}

// CertChanged forgets the last certificate error and ends the pause it
// started: a new certificate deserves a fresh try, and health checks must
// not report the old one's error.
func (s *Service) CertChanged() {
	s.mu.Lock()
	s.certErr = nil
	s.pausedUntil = time.Time{}
	s.mu.Unlock()
	s.kick()
}

// CertError returns the last certificate error reported by the Sender, or
// nil if none was seen or a push succeeded since. Use it for health checks.
func (s *Service) CertError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.certErr
}

// Run sends pushes until ctx is done: coalesced pushes when their window
// closes, and due re-pushes every poll interval. It returns nil when ctx is
// done.
func (s *Service) Run(ctx context.Context) error {
	for {
		more, err := s.runOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			s.logger.ErrorContext(ctx, "push run failed", "err", err)
		}
		if more && err == nil {
			continue
		}
		var timer *time.Timer
		var fired <-chan time.Time // nil: sleep until woken
		if d, ok := s.nextWake(); ok {
			timer = time.NewTimer(d)
			fired = timer.C
		}
		select {
		case <-ctx.Done():
		case <-s.wake:
			// A Notify may have opened a window that closes before the timer.
		case <-fired:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// nextWake returns how long Run may sleep; false means until woken (by
// Notify, CertChanged or SetRepush): nothing is queued or paused, and
// re-pushes are off or cannot be sent, so there is nothing to poll for.
func (s *Service) nextWake() (time.Duration, bool) {
	now := s.clock.Now()
	repush := s.repushing()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !repush && s.head == len(s.queue) && !s.pausedUntil.After(now) {
		return 0, false
	}
	wait := s.poll
	var next time.Time
	if s.head < len(s.queue) {
		next = s.queue[s.head].due
	}
	if s.pausedUntil.After(now) && s.pausedUntil.After(next) {
		next = s.pausedUntil
	}
	if !next.IsZero() {
		if d := next.Sub(now); d < wait {
			wait = d
		}
	}
	if wait < time.Millisecond {
		wait = time.Millisecond
	}
	return wait, true
}

// repushing reports whether Run looks for due re-pushes: they are on
// (SetRepush) and the Sender can push at all.
func (s *Service) repushing() bool {
	if s.noRepush.Load() {
		return false
	}
	r, ok := s.sender.(ReadySender)
	return !ok || r.Ready()
}

// RunOnce sends the coalesced pushes whose window has closed and one batch
// of due re-pushes, then returns. Run calls it in a loop; tests call it with
// a fake clock.
func (s *Service) RunOnce(ctx context.Context) error {
	_, err := s.runOnce(ctx)
	return err
}

// runOnce reports whether more due re-pushes may be waiting.
func (s *Service) runOnce(ctx context.Context) (more bool, err error) {
	s.logDropped(ctx)
	for {
		if s.paused() {
			return false, nil
		}
		ids := s.popDue()
		if len(ids) == 0 {
			break
		}
		if sent, _, err := s.push(ctx, ids); err != nil {
			if !sent {
				s.requeue(ids)
			}
			return false, err
		}
	}
	if s.paused() || !s.repushing() {
		return false, nil
	}
	ids, err := s.store.DueRepushes(ctx, s.clock.Now(), s.batchSize)
	if err != nil {
		return false, fmt.Errorf("list due re-pushes: %w", err)
	}
	if len(ids) == 0 {
		return false, nil
	}
	_, results, err := s.push(ctx, ids)
	if err != nil {
		return false, err
	}
	// Go on at once only if this batch was full and did something; due
	// ids without a push target would otherwise be read again and again.
	return len(ids) >= s.batchSize && len(results) > 0, nil
}

// SetRepush turns re-pushing of silent devices on or off (default on).
// With several replicas on one database only the scheduler leader re-pushes,
// so silent devices are not pushed once per replica; every replica still
// pushes the work it queued itself.
func (s *Service) SetRepush(on bool) {
	if s.noRepush.Swap(!on) == on {
		s.kick() // Run may be sleeping until woken
	}
}

// kick wakes Run without blocking.
func (s *Service) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Service) paused() bool {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	return now.Before(s.pausedUntil)
}

// popDue takes up to batchSize ids whose coalescing window has closed.
func (s *Service) popDue() []string {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for s.head < len(s.queue) && len(ids) < s.batchSize {
		q := s.queue[s.head]
		if q.due.After(now) {
			break
		}
		s.queue[s.head] = queued{}
		s.head++
		delete(s.pending, q.id)
		ids = append(ids, q.id)
	}
	// Compact once the dead prefix is the larger part.
	if s.head > 0 && s.head*2 >= len(s.queue) {
		n := copy(s.queue, s.queue[s.head:])
		clear(s.queue[n:])
		s.queue = s.queue[:n]
		s.head = 0
	}
	return ids
}

// requeue puts back ids whose push could not be attempted.
func (s *Service) requeue(ids []string) {
	s.Notify(ids...)
}

func (s *Service) logDropped(ctx context.Context) {
	s.mu.Lock()
	n := s.dropped
	s.dropped = 0
	s.mu.Unlock()
	if n > 0 {
		s.logger.WarnContext(ctx, "push queue full, requests dropped", "dropped", n, "max_pending", s.maxPending)
	}
}

// Push pushes ids now, bypassing the coalescing window and the certificate
// pause, records the outcomes like any push and returns them (one per id
// that has a valid push token). It is meant for an admin's explicit "push
// this device" and blocks until APNs answers.
func (s *Service) Push(ctx context.Context, ids ...string) ([]Result, error) {
	var all []Result
	for chunk := range slices.Chunk(ids, s.batchSize) {
		_, results, err := s.push(ctx, chunk)
		all = append(all, results...)
		if err != nil {
			return all, err
		}
	}
	return all, nil
}

// push sends one batch and records the outcomes. sent reports whether the
// pushes went out (even if recording them failed).
func (s *Service) push(ctx context.Context, ids []string) (sent bool, _ []Result, err error) {
	states, err := s.store.PushTargets(ctx, ids)
	if err != nil {
		return false, nil, fmt.Errorf("load push targets: %w", err)
	}
	if len(states) == 0 {
		return true, nil, nil
	}
	targets := make([]Target, len(states))
	for i, st := range states {
		targets[i] = st.Target
	}
	results := s.sender.Send(ctx, targets)
	at := s.clock.Now()

	out := make([]Result, len(states))
	recs := make([]Record, len(states))
	counts := make(map[Outcome]int)
	var certErr error
	for i, st := range states {
		res := Result{EnrollmentID: st.EnrollmentID, Outcome: OutcomeError, Reason: "NoResult", Err: errors.New("sender returned no result")}
		if i < len(results) {
			res = results[i]
		}
		out[i] = res
		s.metrics.observe(res)
		counts[res.Outcome]++
		rec := Record{
			EnrollmentID: st.EnrollmentID,
			At:           at,
			Outcome:      res.Outcome,
			Reason:       res.Reason,
			Attempt:      st.Attempt + 1,
		}
		if !res.Outcome.InvalidatesToken() && (s.maxAttempts == 0 || rec.Attempt < s.maxAttempts) {
			rec.NextRepush = at.Add(s.backoff(rec.Attempt))
		}
		recs[i] = rec
		s.logResult(ctx, st, res, rec)
		if res.Outcome == OutcomeCertError && certErr == nil {
			certErr = res.Err
			if certErr == nil {
				certErr = fmt.Errorf("apns refused the push certificate: %s", res.Reason)
			}
		}
	}
	s.afterBatch(ctx, at, counts, certErr)
	if err := s.store.RecordPushes(ctx, recs); err != nil {
		return true, out, fmt.Errorf("record pushes: %w", err)
	}
	return true, out, nil
}

func (s *Service) logResult(ctx context.Context, st TargetState, res Result, rec Record) {
	level := slog.LevelDebug
	if res.Outcome.InvalidatesToken() {
		level = slog.LevelInfo
	}
	if !s.logger.Enabled(ctx, level) {
		return
	}
	attrs := []any{
		"enrollment_id", st.EnrollmentID,
		"token_hash", TokenHash(st.Token),
		"outcome", string(res.Outcome),
		"status", res.Status,
		"reason", res.Reason,
		"attempt", rec.Attempt,
		"latency", res.Latency,
	}
	if res.Err != nil {
		attrs = append(attrs, "err", res.Err)
	}
	if res.Outcome.InvalidatesToken() {
		s.logger.InfoContext(ctx, "push token invalidated", attrs...)
		return
	}
	s.logger.DebugContext(ctx, "push sent", attrs...)
}

// afterBatch updates the certificate state and logs a batch summary.
func (s *Service) afterBatch(ctx context.Context, at time.Time, counts map[Outcome]int, certErr error) {
	if certErr != nil {
		s.mu.Lock()
		s.certErr = certErr
		s.pausedUntil = at.Add(s.certPause)
		s.mu.Unlock()
		s.logger.ErrorContext(ctx, "apns refused the push certificate; pushes paused",
			"err", certErr, "cert_errors", counts[OutcomeCertError], "pause", s.certPause)
		if s.onCertError != nil {
			s.onCertError(certErr)
		}
	} else if counts[OutcomeOK] > 0 {
		s.mu.Lock()
		s.certErr = nil
		s.mu.Unlock()
	}
	if failed := counts[OutcomeRetry] + counts[OutcomeError]; failed > 0 {
		s.logger.WarnContext(ctx, "pushes failed",
			"retry", counts[OutcomeRetry], "error", counts[OutcomeError], "ok", counts[OutcomeOK])
	}
}

// backoff returns the re-push delay after the attempt-th push (attempt >= 1).
func (s *Service) backoff(attempt int) time.Duration {
	d := s.backoffBase
	for i := 1; i < attempt; i++ {
		if d >= s.backoffCap/2 {
			return s.backoffCap
		}
		d *= 2
	}
	return min(d, s.backoffCap)
}
