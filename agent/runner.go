package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// maxOutbox bounds the events kept while the server is unreachable; the
// oldest are dropped first.
const maxOutbox = 256

// Clock tells the time and waits. Tests run the real SystemClock inside a
// testing/synctest bubble, or inject their own.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the Clock of the operating system. It is the only place
// the agent reads the wall clock; main injects it.
type SystemClock struct{}

// Now returns the current local time.
func (SystemClock) Now() time.Time { return time.Now() }

// After waits for d.
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// PlanSource fetches the device's plan from the server.
type PlanSource interface {
	Plan(ctx context.Context) (Plan, error)
}

// Reporter delivers events to the server, in order. An error means none of
// them were accepted; the runner retries them later.
type Reporter interface {
	Report(ctx context.Context, events []Event) error
}

// Presenter shows things to the user.
//
// Present shows a prompt and returns a channel that delivers the user's
// choice at most once and is then closed. When ctx is done the presenter
// takes the prompt down and closes the channel without a value; the runner
// does that when a window is no longer wanted. SetStatus replaces the menu
// bar item. Open opens a URL (Software Update, a details page).
type Presenter interface {
	Present(ctx context.Context, p Prompt) (<-chan Choice, error)
	SetStatus(ctx context.Context, s Status) error
	Open(ctx context.Context, url string) error
}

// Store persists the runner's Snapshot; FileStore is the implementation.
type Store interface {
	Load(ctx context.Context) (Snapshot, error)
	Save(ctx context.Context, s Snapshot) error
}

// Option configures a Runner.
type Option func(*Runner)

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option { return func(r *Runner) { r.log = l } }

// WithMachine sets the machine's timings; the default is DefaultMachine.
func WithMachine(m Machine) Option { return func(r *Runner) { r.machine = m.withDefaults() } }

// WithPlanInterval sets how often the plan is fetched (default 15 minutes).
func WithPlanInterval(d time.Duration) Option { return func(r *Runner) { r.planEvery = d } }

// WithRetryInterval sets how soon a failed plan fetch, report or window is
// retried (default 1 minute).
func WithRetryInterval(d time.Duration) Option { return func(r *Runner) { r.retryEvery = d } }

// WithMaxSleep caps how long Run sleeps between steps (default 1 minute), so
// a Mac waking from sleep catches up with the wall clock quickly.
func WithMaxSleep(d time.Duration) Option { return func(r *Runner) { r.maxSleep = d } }

// Runner drives the Machine: it fetches plans, presents what the machine
// wants, feeds answers back and reports events. Run is its loop; Step is one
// evaluation at a given instant. A Runner is used by one goroutine at a
// time.
type Runner struct {
	clock     Clock
	plans     PlanSource
	reporter  Reporter
	presenter Presenter
	store     Store
	log       *slog.Logger
	machine   Machine

	planEvery, retryEvery, maxSleep time.Duration

	loaded        bool
	snap          Snapshot
	saved         []byte
	nextPlan      time.Time
	nextReport    time.Time
	noWindowUntil time.Time
	dirty         bool
	status        Status
	statusSet     bool
	seq           uint64
	open          map[uint64]*openPrompt
	answers       chan answer
}

type openPrompt struct {
	prompt Prompt
	cancel context.CancelFunc
}

type answer struct {
	id     uint64
	choice Choice
	ok     bool
}

// NewRunner returns a runner. All arguments are required.
func NewRunner(clock Clock, plans PlanSource, reporter Reporter, presenter Presenter, store Store, opts ...Option) *Runner {
	if clock == nil || plans == nil || reporter == nil || presenter == nil || store == nil {
		panic("agent: NewRunner with a nil dependency")
	}
	r := &Runner{
		clock:      clock,
		plans:      plans,
		reporter:   reporter,
		presenter:  presenter,
		store:      store,
		log:        slog.New(slog.DiscardHandler),
		machine:    DefaultMachine(),
		planEvery:  15 * time.Minute,
		retryEvery: time.Minute,
		maxSleep:   time.Minute,
		open:       make(map[uint64]*openPrompt),
		answers:    make(chan answer, 16),
	}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Run steps the machine until ctx is done, sleeping on the clock between
// steps and waking for the user's answers. It returns nil when ctx is done
// and an error only when the persisted state cannot be read.
func (r *Runner) Run(ctx context.Context) error {
	defer r.closeAll()
	for {
		now := r.clock.Now()
		next, err := r.Step(ctx, now)
		if err != nil {
			return err
		}
		wait := r.maxSleep
		if !next.IsZero() {
			wait = max(min(wait, next.Sub(now)), 0)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.clock.After(wait):
		case a := <-r.answers:
			r.handle(ctx, a, r.clock.Now())
		}
	}
}

// Step fetches the plan when due, evaluates the machine at now, presents
// the result, persists the state and reports events. It returns when it
// wants to run again. Failures to reach the server or the presenter are
// logged and retried; only a state file that cannot be read is an error.
func (r *Runner) Step(ctx context.Context, now time.Time) (time.Time, error) {
	if err := r.load(ctx); err != nil {
		return time.Time{}, err
	}
	if !now.Before(r.nextPlan) {
		r.refreshPlan(ctx, now)
	}
	d := r.machine.Evaluate(r.plan(), r.snap.State, now)
	r.apply(ctx, d, now)
	next := r.nextPlan
	if !d.Next.IsZero() {
		next = minTime(next, d.Next)
	}
	if len(r.snap.Outbox) > 0 {
		next = minTime(next, r.nextReport)
	}
	if now.Before(r.noWindowUntil) {
		next = minTime(next, r.noWindowUntil)
	}
	return next, nil
}

func (r *Runner) load(ctx context.Context) error {
	if r.loaded {
		return nil
	}
	snap, err := r.store.Load(ctx)
	if err != nil {
		return fmt.Errorf("start agent: %w", err)
	}
	r.snap = snap
	r.saved, _ = EncodeSnapshot(snap)
	r.loaded = true
	return nil
}

func (r *Runner) plan() Plan {
	if r.snap.Plan == nil {
		return Plan{}
	}
	return *r.snap.Plan
}

func (r *Runner) refreshPlan(ctx context.Context, now time.Time) {
	p, err := r.plans.Plan(ctx)
	if err != nil {
		r.log.WarnContext(ctx, "fetch plan failed, keeping the last one", "err", err)
		r.nextPlan = now.Add(r.retryEvery)
		return
	}
	r.nextPlan = now.Add(r.planEvery)
	if err := p.Validate(); err != nil {
		r.log.WarnContext(ctx, "server sent an invalid plan, keeping the last one", "err", err)
		return
	}
	if old := r.plan(); old.Key() != p.Key() || old.Active() != p.Active() {
		r.log.InfoContext(ctx, "new plan", "target_version", p.TargetVersion, "deadline", p.Deadline, "path", p.Path, "active", p.Active())
	}
	if r.snap.Plan == nil || *r.snap.Plan != p {
		r.snap.Plan = &p
		r.dirty = true
	}
}

func (r *Runner) handle(ctx context.Context, a answer, now time.Time) {
	op, found := r.open[a.id]
	if !found {
		return // a prompt the runner already took down
	}
	delete(r.open, a.id)
	op.cancel()
	if !a.ok {
		if op.prompt.Kind.Window() {
			// The presenter lost the window without an answer: do not
			// reopen it in a tight loop.
			r.noWindowUntil = now.Add(r.retryEvery)
		}
		return
	}
	d, err := r.machine.Choose(r.plan(), r.snap.State, op.prompt, a.choice, now)
	if err != nil {
		r.log.DebugContext(ctx, "answer ignored", "prompt", op.prompt.Kind, "choice", a.choice, "err", err)
	}
	r.apply(ctx, d, now)
}

func (r *Runner) apply(ctx context.Context, d Decision, now time.Time) {
	if d.State.PlanKey != r.snap.State.PlanKey {
		r.closeAll()
	}
	if d.State != r.snap.State {
		r.snap.State = d.State
		r.dirty = true
	}

	if !r.statusSet || d.Status != r.status {
		if err := r.presenter.SetStatus(ctx, d.Status); err != nil {
			r.log.WarnContext(ctx, "set menu status failed", "err", err)
		} else {
			r.status, r.statusSet = d.Status, true
		}
	}

	id, cur := r.openWindow()
	switch {
	case d.Window == nil && cur != nil:
		r.closePrompt(id)
	case d.Window != nil && (cur == nil || cur.prompt.Kind != d.Window.Kind):
		if cur != nil {
			r.closePrompt(id)
		}
		if !now.Before(r.noWindowUntil) {
			r.present(ctx, *d.Window, now)
		}
	}
	for _, p := range d.Prompts {
		// A newer prompt of the same kind replaces one still on screen.
		for id, op := range r.open {
			if op.prompt.Kind == p.Kind {
				r.closePrompt(id)
			}
		}
		r.present(ctx, p, now)
	}
	if d.Open != "" {
		if err := r.presenter.Open(ctx, d.Open); err != nil {
			r.log.WarnContext(ctx, "open url failed", "url", d.Open, "err", err)
		}
	}
	for _, e := range d.Events {
		switch e.Kind {
		case EventInstallRequested, EventForcedInstall, EventReplanned:
			r.log.InfoContext(ctx, "agent event", "event", e.Kind, "target_version", e.TargetVersion)
		}
	}
	r.queue(d.Events...)
	r.save(ctx)
	r.flush(ctx, now)
}

func (r *Runner) present(ctx context.Context, p Prompt, now time.Time) {
	pctx, cancel := context.WithCancel(ctx)
	ch, err := r.presenter.Present(pctx, p)
	if err != nil {
		cancel()
		r.log.WarnContext(ctx, "present prompt failed", "prompt", p.Kind, "err", err)
		if p.Kind.Window() {
			r.noWindowUntil = now.Add(r.retryEvery)
		}
		return
	}
	r.seq++
	id := r.seq
	r.open[id] = &openPrompt{prompt: p, cancel: cancel}
	e := newEvent(EventPromptShown, r.plan(), now)
	e.Prompt = p.Kind
	r.queue(e)
	go func() {
		c, ok := <-ch
		select {
		case r.answers <- answer{id: id, choice: c, ok: ok}:
		case <-pctx.Done():
		}
	}()
}

func (r *Runner) openWindow() (uint64, *openPrompt) {
	for id, op := range r.open {
		if op.prompt.Kind.Window() {
			return id, op
		}
	}
	return 0, nil
}

func (r *Runner) closePrompt(id uint64) {
	if op, ok := r.open[id]; ok {
		op.cancel()
		delete(r.open, id)
	}
}

func (r *Runner) closeAll() {
	for id := range r.open {
		r.closePrompt(id)
	}
}

func (r *Runner) queue(events ...Event) {
	if len(events) == 0 {
		return
	}
	r.dirty = true
	r.snap.Outbox = append(r.snap.Outbox, events...)
	if n := len(r.snap.Outbox) - maxOutbox; n > 0 {
		r.snap.Outbox = append([]Event(nil), r.snap.Outbox[n:]...)
	}
}

func (r *Runner) save(ctx context.Context) {
	if !r.dirty {
		return
	}
	data, err := EncodeSnapshot(r.snap)
	if err != nil {
		r.log.ErrorContext(ctx, "encode agent state failed", "err", err)
		return
	}
	if bytes.Equal(data, r.saved) {
		r.dirty = false
		return
	}
	if err := r.store.Save(ctx, r.snap); err != nil {
		r.log.ErrorContext(ctx, "save agent state failed", "err", err)
		return
	}
	r.saved, r.dirty = data, false
}

func (r *Runner) flush(ctx context.Context, now time.Time) {
	if len(r.snap.Outbox) == 0 || now.Before(r.nextReport) {
		return
	}
	if err := r.reporter.Report(ctx, r.snap.Outbox); err != nil {
		if !errors.Is(err, context.Canceled) {
			r.log.WarnContext(ctx, "report events failed, will retry", "events", len(r.snap.Outbox), "err", err)
		}
		r.nextReport = now.Add(r.retryEvery)
		return
	}
	r.snap.Outbox = nil
	r.dirty = true
	r.save(ctx)
}
