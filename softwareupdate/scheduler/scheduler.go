// Package scheduler is Sundial's deadline scheduler: for every managed Mac it
// resolves the target version (softwareupdate.ResolveTarget), its personal
// deadline (PersonalDeadline) and its phase (Decide), records every phase
// change with its reason, and asks the device's Enforcer (legacy commands or
// declarative management) for the step of that phase.
//
// A pass (RunOnce) touches only devices whose due time has come (a due-time
// index kept by the store) plus devices touched by events: a check-in, a
// command result, a policy, exception or catalog change. The step an
// enforcer sends is committed in the same transaction as the state that
// records it, so a restarted scheduler never sends a step twice; a Mac
// that is offline at its deadline gets the queued command at its next
// connection.
//
// Admin operations (policies, groups, exceptions, history, audit log) are
// plain methods of Manager.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/service"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/storage"
)

// Clock tells the time.
type Clock interface{ Now() time.Time }

// Notifier is told which devices have new commands (so it can push them).
type Notifier interface{ Notify(ids ...string) }

// DefaultBatchSize is how many devices a pass loads and commits at once.
// On the 100,000-Mac benchmark with 16 KB database pages, 1,000 against
// 500: the pass in which 40,000 Macs change phase took ~1.1 s instead of
// ~1.2 s (the VM's fsync latency makes single runs vary by a quarter) and
// a full re-evaluation with as many changes 1.35 s instead of 1.64 s, for
// 11 MB more heap at the peak (36 MB; 157 MB in all); 2,000 gained little
// more for another 25 MB.
const DefaultBatchSize = 1000

// Scheduler drives every managed device toward its target version.
type Scheduler struct {
	store      Store
	devices    DeviceReader
	cat        *catalog.Catalog
	clock      Clock
	log        *slog.Logger
	notifier   Notifier
	enforcers  map[softwareupdate.EnforcementPath]Enforcer
	zones      ZoneReader // optional: Macs' own zones for device-local policies
	batch      int
	tick       time.Duration
	grace      time.Duration // offline grace (grace.go); 0: default, <0: off
	pauseStore PauseStore    // where pauses are kept, if not in store (pause.go)
	ringStore  RingStore     // where ring plans are kept, if not in store (ringplan.go)

	// mu serializes evaluation: a pass chunk, a result, a Start Now.
	mu  sync.Mutex
	cfg *config // cached policies and exceptions; nil when stale
	// gates is the last ring-gate evaluation (ringgate.go), gatesFP the
	// config fingerprint it was made with.
	gates   ringGates
	gatesFP string

	evMu    sync.Mutex
	touched map[string]struct{}
	// awaiting holds the devices without state whose first evaluation
	// waits for their first inventory, with when it began (FirstInventoryWait).
	awaiting map[string]time.Time
	// running is set while Run runs passes here (the leader): only then
	// is a touched device sure to be evaluated soon.
	running atomic.Bool
	sweep   bool
	wake    chan struct{}

	// observe is told about every pass Run makes (WithPassObserver).
	observe PassObserver
	// gateObserver is told about every ring-gate evaluation (gateobserver.go).
	gateObserver GateObserver
	// groupPhases is where the gates' tally reads, if not store (groupphases.go).
	groupPhases GroupPhaseStore
}

// Option configures a Scheduler.
type Option func(*Scheduler)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Scheduler) { s.log = l } }

// WithNotifier sets who is told about new commands (push).
func WithNotifier(n Notifier) Option { return func(s *Scheduler) { s.notifier = n } }

// WithEnforcer sets the enforcer of a path (legacy or declarative). Under
// softwareupdate.PathAuto a device uses the declarative enforcer if one is
// set and the Mac is supervised and runs macOS 14 or later, else legacy.
func WithEnforcer(path softwareupdate.EnforcementPath, e Enforcer) Option {
	return func(s *Scheduler) { s.enforcers[path] = e }
}

// WithBatchSize sets how many devices a pass handles per transaction.
func WithBatchSize(n int) Option {
	return func(s *Scheduler) {
		if n > 0 {
			s.batch = n
		}
	}
}

// WithTick sets how often Run starts a pass without an event (default 1 min).
func WithTick(d time.Duration) Option {
	return func(s *Scheduler) {
		if d > 0 {
			s.tick = d
		}
	}
}

// DefaultSettle is how long Run lets events gather before the pass they
// ask for. Every check-in (Authenticate, TokenUpdate) asks for one; without
// the wait, Macs enrolling at 60 a second made 660 passes per 1,000 Macs,
// each committing one to three states with its own fsyncs.
// Command results and Start Now are evaluated at once, without it.
const DefaultSettle = 250 * time.Millisecond

// FirstInventoryWait is how long the first evaluation of a Mac without
// state waits for its first inventory (the DeviceInformation queued at
// enrolment, which a Mac answers in the session right after its
// TokenUpdate; the result touches it again). Evaluated before, its state
// would be written from the Authenticate facts and rewritten moments
// later; a Mac without inventory gets no update step, so the wait delays
// no action. After it (Run wakes for it) the Mac is evaluated with the
// facts it has.
const FirstInventoryWait = 3 * time.Second

// New returns a Scheduler. store, devices, cat and clk are required.
func New(store Store, devices DeviceReader, cat *catalog.Catalog, clk Clock, opts ...Option) *Scheduler {
	if store == nil || devices == nil || cat == nil || clk == nil {
		panic("scheduler.New: nil store, device reader, catalog or clock")
	}
	s := &Scheduler{
		store: store, devices: devices, cat: cat, clock: clk,
		log:       slog.New(slog.DiscardHandler),
		enforcers: map[softwareupdate.EnforcementPath]Enforcer{},
		batch:     DefaultBatchSize,
		tick:      time.Minute,
		touched:   map[string]struct{}{},
		awaiting:  map[string]time.Time{},
		wake:      make(chan struct{}, 1),
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// ServiceOptions returns the mdm/service options that route check-ins and
// the reports the scheduler and its enforcers need to it.
func (s *Scheduler) ServiceOptions() []service.Option {
	seen := map[string]bool{"DeviceInformation": true}
	types := []string{"DeviceInformation"}
	for _, e := range s.enforcers {
		if rt, ok := e.(ResultTypes); ok {
			for _, t := range rt.RequestTypes() {
				if !seen[t] {
					seen[t] = true
					types = append(types, t)
				}
			}
		}
	}
	opts := []service.Option{service.WithCheckinHook(s)}
	for _, t := range types {
		opts = append(opts, service.WithResultHandler(t, s))
	}
	return opts
}

// config is the admin configuration a pass evaluates against.
type config struct {
	policies  map[string]*PolicyRecord
	deviceExc map[string]*softwareupdate.Exception
	groupExc  map[string]*softwareupdate.Exception
	pauses    map[string]*Pause // by group; FleetPause holds every group
	rings     []*RingPlan       // ring plans (ringplan.go)
	ringOf    map[string]ringRef
	calendars map[string]*softwareupdate.WorkCalendar // by group (calendar.go)
}

func (s *Scheduler) loadConfig(ctx context.Context) (*config, error) {
	if s.cfg != nil {
		return s.cfg, nil
	}
	ps, err := s.store.Policies(ctx)
	if err != nil {
		return nil, fmt.Errorf("load policies: %w", err)
	}
	es, err := s.store.Exceptions(ctx)
	if err != nil {
		return nil, fmt.Errorf("load exceptions: %w", err)
	}
	c := &config{policies: map[string]*PolicyRecord{}, deviceExc: map[string]*softwareupdate.Exception{}, groupExc: map[string]*softwareupdate.Exception{}}
	for i := range ps {
		c.policies[ps[i].GroupID] = &ps[i]
	}
	for i := range es {
		switch es[i].Scope {
		case ScopeDevice:
			c.deviceExc[es[i].ID] = &es[i].Exception
		case ScopeGroup:
			c.groupExc[es[i].ID] = &es[i].Exception
		}
	}
	c.calendars = compileCalendars(c.policies, s.log)
	if err := s.loadPauses(ctx, c); err != nil {
		return nil, err
	}
	if err := s.loadRings(ctx, c); err != nil {
		return nil, err
	}
	s.cfg = c
	return c, nil
}

// refreshConfig reloads policies and exceptions at the start of a pass and
// asks for a full sweep when they changed since the last load. Another
// replica's admin API may have changed them, and only this replica's own
// changes call Reevaluate.
func (s *Scheduler) refreshConfig(ctx context.Context) error {
	s.mu.Lock()
	old := s.cfg
	s.cfg = nil
	fresh, err := s.loadConfig(ctx) // loadConfig needs s.mu
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if old != nil && old.fingerprint() != fresh.fingerprint() {
		s.evMu.Lock()
		s.sweep = true
		s.evMu.Unlock()
	}
	return nil
}

// fingerprint changes whenever a policy or an exception does.
func (c *config) fingerprint() string {
	var b strings.Builder
	groups := make([]string, 0, len(c.policies))
	for g := range c.policies {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	for _, g := range groups {
		fmt.Fprintf(&b, "p%s:%d;", g, c.policies[g].Revision)
	}
	for _, m := range []map[string]*softwareupdate.Exception{c.deviceExc, c.groupExc} {
		ids := make([]string, 0, len(m))
		for id := range m {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			e := m[id]
			fmt.Fprintf(&b, "e%s:%v:%d:%d;", id, e.Exempt, e.DeadlineOverride.UnixNano(), e.Expires.UnixNano())
		}
	}
	c.pauseFingerprint(&b)
	c.ringFingerprint(&b)
	return b.String()
}

// Reevaluate marks every device for evaluation at the next pass, with
// fresh policies and exceptions (after a policy, group or exception change)
// and wakes Run.
func (s *Scheduler) Reevaluate() {
	s.mu.Lock()
	s.cfg = nil
	s.mu.Unlock()
	s.evMu.Lock()
	s.sweep = true
	s.evMu.Unlock()
	s.signal()
}

// CatalogChanged re-evaluates every device against the (changed) catalog.
func (s *Scheduler) CatalogChanged() { s.Reevaluate() }

// Touch marks devices for evaluation at the next pass (with fresh device
// records) and wakes Run.
func (s *Scheduler) Touch(ids ...string) {
	s.evMu.Lock()
	for _, id := range ids {
		s.touched[id] = struct{}{}
	}
	s.evMu.Unlock()
	s.signal()
}

func (s *Scheduler) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Checkin implements service.CheckinHook: a device that checks in is
// evaluated at the next pass (an offline Mac past its deadline is enforced
// when it comes back).
func (s *Scheduler) Checkin(ctx context.Context, id string, msg *mdm.CheckinMessage) {
	switch msg.MessageType {
	case mdm.Authenticate, mdm.TokenUpdate, mdm.CheckOut:
		if !msg.UserChannel() {
			s.Touch(id)
		}
	}
}

// HandleResult implements service.ResultHandler: the enforcer folds the
// report into the device's state, and the device is evaluated at once so
// the next step is queued without waiting for a pass.
//
// A DeviceInformation the scheduler did not ask for (the inventory queued
// at enrolment and every day) only refreshes facts the service has already
// stored on the device: it is an event like a check-in, evaluated at the
// next settled pass together with the others. Evaluating each at once cost
// a transaction of its own per Mac, under the scheduler's lock. A replica
// that is not the leader runs no passes, so it still evaluates at once.
func (s *Scheduler) HandleResult(ctx context.Context, id, requestType string, r *mdm.Report, raw []byte) error {
	if requestType == "DeviceInformation" && s.running.Load() {
		sts, err := s.store.States(ctx, []string{id})
		if err != nil {
			return fmt.Errorf("load update state: %w", err)
		}
		if st := sts[0]; st == nil || st.StepCommand == "" || st.StepCommand != r.CommandUUID {
			s.Touch(id)
			return nil
		}
	}
	res := Result{RequestType: requestType, CommandUUID: r.CommandUUID, Status: r.Status, ErrorChain: r.ErrorChain, Raw: raw}
	_, err := s.evaluateOne(ctx, id, func(st *State, now time.Time) ([]Transition, error) {
		e := s.enforcers[st.Path]
		if e == nil {
			return nil, nil
		}
		current := res.CommandUUID != "" && res.CommandUUID == st.StepCommand
		h, err := e.HandleResult(ctx, st, res, now)
		if err != nil {
			return h, err
		}
		return append(h, observeResult(st, e, res, current, now)...), nil
	})
	return err
}

// StartNow records that the user asked to install now (the agent's Start
// Now) and evaluates the device: the legacy enforcer sends InstallASAP in
// the notify and countdown phases.
func (s *Scheduler) StartNow(ctx context.Context, id string) (*State, error) {
	return s.evaluateOne(ctx, id, func(st *State, now time.Time) ([]Transition, error) {
		st.StartNowAt = now.UTC()
		return []Transition{{At: now.UTC(), Kind: EventResult, Step: "start-now", Reason: "the user chose Start Now"}}, nil
	})
}

// FreshNotice restarts a device's minimum notice from now (an exception was
// cleared early) and evaluates it.
func (s *Scheduler) FreshNotice(ctx context.Context, id string) error {
	s.mu.Lock()
	s.cfg = nil // exceptions changed
	s.mu.Unlock()
	_, err := s.evaluateOne(ctx, id, func(st *State, now time.Time) ([]Transition, error) {
		if st.FirstNonCompliant.IsZero() {
			return nil, nil
		}
		st.FirstNonCompliant = time.Time{}
		return []Transition{{At: now.UTC(), Kind: EventReset, Reason: "exception cleared: fresh minimum notice"}}, nil
	})
	return err
}

// Retry clears a device's surfaced failure and evaluates it (an admin
// fixed the cause).
func (s *Scheduler) Retry(ctx context.Context, id, actor string) (*State, error) {
	return s.evaluateOne(ctx, id, func(st *State, now time.Time) ([]Transition, error) {
		if st.Failure == "" {
			return nil, nil
		}
		old := st.Failure
		st.ClearFailure()
		st.Attempts, st.Errors = 0, 0
		st.Step, st.Awaiting = "", ""
		return []Transition{{At: now.UTC(), Kind: EventReset, Reason: "failure cleared by " + actor + ": " + old}}, nil
	})
}

// mutator changes a state before evaluation.
type mutator func(st *State, now time.Time) ([]Transition, error)

func (s *Scheduler) evaluateOne(ctx context.Context, id string, mut mutator) (*State, error) {
	dev, err := s.devices.Device(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("load device %s: %w", id, err)
	}
	if !manageable(dev) {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	var out *State
	for try := 0; ; try++ {
		commits, err := s.evaluateChunk(ctx, []string{id}, []*mdm.Device{dev}, mut, false, now)
		if err != nil {
			return nil, err
		}
		err = s.commit(ctx, commits, now)
		if errors.Is(err, ErrConflict) && try < 3 {
			continue
		}
		if err != nil {
			return nil, err
		}
		if len(commits) > 0 {
			out = commits[0].State
		} else {
			sts, err := s.store.States(ctx, []string{id})
			if err != nil {
				return nil, err
			}
			out = sts[0]
		}
		return out, nil
	}
}

// manageable reports whether the scheduler manages an enrollment: device
// channels only.
func manageable(d *mdm.Device) bool {
	return d.ParentID == "" && !strings.Contains(d.ID, ":")
}

// Stats describe one pass.
type Stats struct {
	Evaluated int // devices evaluated
	Changed   int // states written
	Commands  int // commands queued
}

// RunOnce runs one pass at the clock's now: a full sweep if one was asked
// for (Reevaluate), the touched devices, then every device whose due time
// has come.
func (s *Scheduler) RunOnce(ctx context.Context) (Stats, error) {
	var st Stats
	now := s.clock.Now()
	if err := s.refreshConfig(ctx); err != nil {
		return st, err
	}
	if err := s.refreshGates(ctx, now); err != nil {
		return st, err
	}
	s.evMu.Lock()
	sweep, touched := s.sweep, s.touched
	s.sweep, s.touched = false, map[string]struct{}{}
	for id, since := range s.awaiting {
		if now.Sub(since) >= FirstInventoryWait {
			touched[id] = struct{}{}
		}
	}
	s.evMu.Unlock()

	requeue := func() {
		s.evMu.Lock()
		s.sweep = s.sweep || sweep
		for id := range touched {
			s.touched[id] = struct{}{}
		}
		s.evMu.Unlock()
	}
	if sweep {
		// Devices with a state are evaluated from their stored facts (kept
		// fresh by inventory and check-in events); devices never evaluated
		// are read from their records.
		after, done := "", false
		next := func() ([]string, []*mdm.Device, error) {
			if done {
				return nil, nil, nil
			}
			ids, err := s.store.StateIDs(ctx, after, s.batch)
			if err != nil {
				return nil, nil, fmt.Errorf("list update states: %w", err)
			}
			if len(ids) < s.batch {
				done = true
			}
			if len(ids) == 0 {
				return nil, nil, nil
			}
			after = ids[len(ids)-1]
			return ids, nil, nil
		}
		if err := s.pipeline(ctx, next, now, &st); err != nil {
			requeue()
			return st, err
		}
		for after := ""; ; {
			ids, err := s.store.Unevaluated(ctx, after, s.batch)
			if err != nil {
				requeue()
				return st, fmt.Errorf("list unevaluated devices: %w", err)
			}
			if len(ids) == 0 {
				break
			}
			after = ids[len(ids)-1]
			for _, id := range ids {
				touched[id] = struct{}{}
			}
		}
	}
	if len(touched) > 0 {
		ids := make([]string, 0, len(touched))
		for id := range touched {
			ids = append(ids, id)
		}
		slices.Sort(ids) // see runDue
		for len(ids) > 0 {
			n := min(len(ids), s.batch)
			devs := make([]*mdm.Device, 0, n)
			for _, id := range ids[:n] {
				d, err := s.devices.Device(ctx, id)
				if errors.Is(err, storage.ErrNotFound) {
					s.evMu.Lock()
					delete(s.awaiting, id)
					s.evMu.Unlock()
					continue
				}
				if err != nil {
					if ctx.Err() != nil {
						requeue()
						return st, ctx.Err()
					}
					// One unreadable record must not stop the others; the
					// device's due time brings it back.
					s.log.Error("device not evaluated", "enrollment_id", id, "err", err)
					continue
				}
				devs = append(devs, d)
			}
			if err := s.runChunk(ctx, nil, devs, !sweep, now, &st); err != nil {
				requeue()
				return st, err
			}
			ids = ids[n:]
		}
	}
	for {
		ids, err := s.store.DueDevices(ctx, now, maxDuePerRound)
		if err != nil {
			return st, fmt.Errorf("list due devices: %w", err)
		}
		if len(ids) == 0 {
			break
		}
		if err := s.runDue(ctx, ids, now, &st); err != nil {
			return st, err
		}
		if len(ids) < maxDuePerRound {
			break
		}
	}
	return st, nil
}

// maxDuePerRound bounds how many due devices one round of a pass loads.
const maxDuePerRound = 100_000

// runDue evaluates and commits due devices chunk by chunk, in device order:
// the update states, histories and queues are keyed by device, so a chunk
// of neighbouring devices dirties a few neighbouring pages of each, where a
// chunk in due-time order would dirty pages all over them (a pass in which
// 40,000 Macs change phase wrote 39 % fewer pages and took a quarter less time).
func (s *Scheduler) runDue(ctx context.Context, ids []string, now time.Time, st *Stats) error {
	slices.Sort(ids)
	next := func() ([]string, []*mdm.Device, error) {
		if len(ids) == 0 {
			return nil, nil, nil
		}
		n := min(len(ids), s.batch)
		chunk := ids[:n]
		ids = ids[n:]
		return chunk, nil, nil
	}
	return s.pipeline(ctx, next, now, st)
}

// pipeline evaluates chunks from next (until it returns nil ids) and
// commits them in order, evaluating the next chunk while the previous one
// commits: decoding and evaluation overlap the single bbolt writer. devs,
// when not nil, are the chunk's fresh device records.
func (s *Scheduler) pipeline(ctx context.Context, next func() ([]string, []*mdm.Device, error), now time.Time, st *Stats) error {
	type evaluated struct {
		n       int
		commits []Commit
		err     error
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan evaluated, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(ch)
		for {
			ids, devs, err := next()
			if err == nil && ids == nil {
				return
			}
			var commits []Commit
			if err == nil {
				commits, err = s.evaluateChunk(ctx, ids, devs, nil, false, now)
			}
			if p, ok := s.store.(CommitPreparer); ok && err == nil {
				p.PrepareCommits(commits)
			}
			select {
			case ch <- evaluated{n: len(ids), commits: commits, err: err}:
			case <-stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	for ev := range ch {
		if ev.err != nil {
			return ev.err
		}
		st.Evaluated += ev.n
		if err := s.commit(ctx, ev.commits, now); err != nil {
			var ce *ConflictError
			if errors.As(err, &ce) {
				s.Touch(ce.IDs...)
			}
			return err
		}
		st.Changed += len(ev.commits)
		for _, c := range ev.commits {
			st.Commands += len(c.Commands)
		}
	}
	return nil
}

// runChunk evaluates and commits one chunk: ids (stored facts) or devs
// (fresh device records). wait lets devices without state wait for their
// first inventory (awaitInventory).
func (s *Scheduler) runChunk(ctx context.Context, ids []string, devs []*mdm.Device, wait bool, now time.Time, st *Stats) error {
	if devs != nil {
		ids = make([]string, 0, len(devs))
		kept := devs[:0:0]
		for _, d := range devs {
			if manageable(d) {
				ids = append(ids, d.ID)
				kept = append(kept, d)
			}
		}
		devs = kept
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	commits, err := s.evaluateChunk(ctx, ids, devs, nil, wait, now)
	if err != nil {
		return err
	}
	st.Evaluated += len(ids)
	if err := s.commit(ctx, commits, now); err != nil {
		var ce *ConflictError
		if errors.As(err, &ce) {
			s.Touch(ce.IDs...)
		}
		return err
	}
	st.Changed += len(commits)
	for _, c := range commits {
		st.Commands += len(c.Commands)
	}
	return nil
}

func (s *Scheduler) commit(ctx context.Context, commits []Commit, now time.Time) error {
	if len(commits) == 0 {
		return nil
	}
	if err := s.store.Commit(ctx, commits, now); err != nil {
		return fmt.Errorf("commit update states: %w", err)
	}
	var notify []string
	for _, c := range commits {
		if len(c.Commands) > 0 {
			notify = append(notify, c.State.DeviceID)
			for _, cmd := range c.Commands {
				s.log.Info("update step queued", "enrollment_id", c.State.DeviceID, "request_type", cmd.RequestType,
					"command_uuid", cmd.UUID, "phase", string(c.State.Phase), "step", c.State.Step)
			}
		}
		for _, h := range c.History {
			if h.Kind == EventPhase {
				s.log.Info("update phase changed", "enrollment_id", c.State.DeviceID, "phase", string(h.To), "from", string(h.From), "reason", h.Reason)
			}
			if h.Kind == EventFailure {
				s.log.Warn("update failure", "enrollment_id", c.State.DeviceID, "reason", h.Reason)
			}
		}
	}
	if len(notify) > 0 && s.notifier != nil {
		s.notifier.Notify(notify...)
	}
	return nil
}

// evaluateChunk loads the states of ids and evaluates each; devs (aligned
// with ids) refreshes facts when given. With wait, a device without state
// and without inventory waits for it (awaitInventory) instead. It returns
// the commits of states that changed. s.mu must be held.
func (s *Scheduler) evaluateChunk(ctx context.Context, ids []string, devs []*mdm.Device, mut mutator, wait bool, now time.Time) ([]Commit, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	cfg, err := s.loadConfig(ctx)
	if err != nil {
		return nil, err
	}
	states, err := s.store.States(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("load update states: %w", err)
	}
	groups, err := s.store.GroupsOf(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("load group membership: %w", err)
	}
	if devs != nil {
		s.dropAwaiting(ids, states, !wait)
	}
	var commits []Commit
	var fresh []State // the chunk's new states, allocated together
	for i, id := range ids {
		st := states[i]
		if st == nil {
			if devs == nil {
				continue // a due entry without state: nothing to do
			}
			if wait && s.awaitInventory(devs[i], now) {
				continue
			}
			if len(fresh) == 0 {
				fresh = make([]State, countNil(states[i:]))
			}
			st, fresh = &fresh[0], fresh[1:]
			st.DeviceID = id
		}
		orig := *st
		if devs != nil {
			st.Facts = FactsOf(devs[i])
			if s.zones != nil {
				st.Facts.TimeZone = agentZone(ctx, s.zones, id)
			}
		}
		var hist []Transition
		if mut != nil {
			failure := st.Failure
			h, err := mut(st, now)
			if err != nil {
				return nil, fmt.Errorf("device %s: %w", id, err)
			}
			hist = h
			if st.Failure != "" && st.Failure != failure {
				hist = append(hist, Transition{At: now.UTC(), Kind: EventFailure, From: st.Phase, Step: st.Step, Reason: st.Failure, Target: st.Target})
			}
		}
		c, err := s.evaluate(ctx, cfg, st, groups[i], now)
		if err != nil {
			return nil, fmt.Errorf("device %s: %w", id, err)
		}
		if len(hist) > 0 {
			c.History = append(hist, c.History...)
		}
		if *st == orig && len(c.Commands) == 0 && len(c.History) == 0 {
			continue
		}
		st.UpdatedAt = now.UTC()
		c.State = st
		commits = append(commits, c)
	}
	return commits, nil
}

func countNil(states []*State) int {
	n := 0
	for _, st := range states {
		if st == nil {
			n++
		}
	}
	return n
}

// awaitInventory reports whether the first evaluation of d (which has no
// state) waits for its first inventory, noting when the wait began; see
// FirstInventoryWait.
func (s *Scheduler) awaitInventory(d *mdm.Device, now time.Time) bool {
	s.evMu.Lock()
	defer s.evMu.Unlock()
	since, ok := s.awaiting[d.ID]
	if d.InventoryAt.IsZero() && (!ok || now.Sub(since) < FirstInventoryWait) {
		if !ok {
			s.awaiting[d.ID] = now
		}
		return true
	}
	delete(s.awaiting, d.ID)
	return false
}

// dropAwaiting ends the wait for inventory of the devices that have a
// state (or of all ids): they are evaluated now.
func (s *Scheduler) dropAwaiting(ids []string, states []*State, all bool) {
	s.evMu.Lock()
	defer s.evMu.Unlock()
	if len(s.awaiting) == 0 {
		return
	}
	for i, id := range ids {
		if all || states[i] != nil {
			delete(s.awaiting, id)
		}
	}
}

// awaitDue reports how long until the first wait for an inventory ends
// (false: no Mac waits), at least DefaultSettle so that a failing pass
// cannot make Run spin.
func (s *Scheduler) awaitDue(now time.Time) (time.Duration, bool) {
	s.evMu.Lock()
	defer s.evMu.Unlock()
	var first time.Time
	for _, since := range s.awaiting {
		if first.IsZero() || since.Before(first) {
			first = since
		}
	}
	if first.IsZero() {
		return 0, false
	}
	return max(first.Add(FirstInventoryWait).Sub(now), DefaultSettle), true
}

// pathFor chooses the enforcement path of a device.
func (s *Scheduler) pathFor(p *softwareupdate.Policy, f *Facts, v catalog.Version) softwareupdate.EnforcementPath {
	switch p.Path {
	case softwareupdate.PathLegacy, softwareupdate.PathDeclarative:
		return p.Path
	}
	if s.enforcers[softwareupdate.PathDeclarative] != nil && f.Supervised && v.Major() >= 14 {
		return softwareupdate.PathDeclarative
	}
	return softwareupdate.PathLegacy
}

var unmanagedPolicy = softwareupdate.Policy{Mode: softwareupdate.ModeUnmanaged}

// evaluate brings st up to date at now: policy, target, deadline, phase
// (with history), then the enforcer's step. It returns the history and
// commands to commit.
func (s *Scheduler) evaluate(ctx context.Context, cfg *config, st *State, group string, now time.Time) (Commit, error) {
	var c Commit
	now = now.UTC()
	note := func(kind EventKind, reason string) {
		c.record(Transition{At: now, Kind: kind, Reason: reason, Target: st.Target, From: st.Phase})
	}
	pol, policyRev := &unmanagedPolicy, uint64(0)
	if rec := cfg.policies[group]; rec != nil {
		pol, policyRev = &rec.Policy, rec.Revision
	}
	if st.GroupID != group || st.PolicyRev != policyRev {
		if st.Phase != "" {
			note(EventReset, fmt.Sprintf("policy changed (group %s, revision %d): fresh minimum notice", group, policyRev))
		}
		st.GroupID, st.PolicyRev = group, policyRev
		st.FirstNonCompliant = time.Time{}
		st.DeadlineMoved = "" // the calendar may have changed: explain afresh
		st.ResetEnforcement()
	}
	ver, _ := catalog.ParseVersion(st.Facts.OSVersion) // unparsable: unknown, reported not enforced
	facts := softwareupdate.DeviceFacts{OSVersion: ver, Build: st.Facts.Build, BoardID: st.Facts.BoardID, Model: st.Facts.Model}
	tgt := softwareupdate.ResolveTarget(*pol, facts, s.cat, now)

	tv := ""
	if !tgt.Version.IsZero() {
		tv = tgt.Version.String()
	}
	if tgt.Status == softwareupdate.StatusRequired {
		if st.Target != tv && st.Target != "" && st.Step != "" {
			note(EventReset, "target changed from "+st.Target+" to "+tv)
			st.ResetEnforcement()
		}
		if st.FirstNonCompliant.IsZero() {
			st.FirstNonCompliant = now
		}
	} else {
		st.FirstNonCompliant = time.Time{}
		if st.Step != "" && tgt.Status == softwareupdate.StatusCompliant {
			st.ResetEnforcement()
		}
	}
	st.Target, st.TargetBuild, st.MajorUpgrade = tv, tgt.Build, tgt.MajorUpgrade

	// evalErr is an error while evaluating this device: it is recorded on
	// the device (failed, retried after EvaluationRetry) and the pass goes
	// on with the others.
	var evalErr error
	path := s.pathFor(pol, &st.Facts, ver)
	if st.Path != path {
		if r, ok := s.enforcers[st.Path].(Retirer); ok && st.Path != "" {
			events, err := r.Retire(ctx, st, now)
			if err != nil {
				evalErr = fmt.Errorf("retire %s enforcement: %w", st.Path, err)
			}
			c.record(events...)
		}
		if evalErr == nil {
			if st.Path != "" && st.Step != "" {
				note(EventReset, "enforcement path changed from "+string(st.Path)+" to "+string(path))
				st.ResetEnforcement()
			}
			st.Path = path
		}
	}
	if st.Failure != "" && !st.RetryAt.IsZero() && !now.Before(st.RetryAt) {
		note(EventReset, "retrying after: "+st.Failure)
		st.ClearFailure()
	}

	ex := cfg.deviceExc[st.DeviceID]
	if ex == nil {
		ex = cfg.groupExc[group]
	}
	// An ineligible Mac (not supervised) gets no update commands, so it
	// carries no step and no enforcement failure: it is ineligible, never
	// failed. (An evaluation error stays until its retry.)
	inel := ineligibility(&st.Facts)
	if inel != "" && (st.Step != "" || (st.Failure != "" && !isEvaluationFailure(st.Failure))) {
		note(EventReset, "ineligible ("+inel+"): enforcement stopped")
		st.ResetEnforcement()
	}
	// A lifted pause gives the Macs it held fresh minimum notice (pause.go).
	pause := cfg.pauseFor(group)
	if pause == nil && st.Phase == softwareupdate.PhasePaused && tgt.Status == softwareupdate.StatusRequired {
		st.FirstNonCompliant = now
		note(EventReset, "pause lifted: fresh minimum notice")
	}
	// A Mac of a ring held by an earlier ring's gate, never notified of its
	// target, keeps its notice anchored at now: it gets full minimum notice
	// from the moment the gate opens. A notified Mac is never held.
	ring, held := s.heldBy(group)
	held = held && tgt.Status == softwareupdate.StatusRequired && notYetNotified(st)
	if held {
		st.FirstNonCompliant = now
	} else if tgt.Status == softwareupdate.StatusRequired && notYetNotified(st) {
		st.FirstNonCompliant = cfg.ringAnchor(group, st.FirstNonCompliant)
	}
	// A business calendar moves the deadline to working time in the Mac's
	// zone (calendar.go); deadlines anchored afresh by a resume or an open
	// ring gate (above) go through here too.
	cal := cfg.calendars[group]
	deviceLoc, calLoc := zonesFor(pol, cal, st.Facts.TimeZone)
	deadline := softwareupdate.PersonalDeadline(*pol, tgt, st.FirstNonCompliant, ex, deviceLoc)
	c.record(noteMove(st, cal, calLoc, &deadline, held, tv, now)...)
	decide := func() softwareupdate.Decision {
		d := paused(softwareupdate.Decide(now, softwareupdate.DeviceState{Target: tgt, Failure: st.Failure, RetryAt: st.RetryAt, Exception: ex, Ineligible: inel}, deadline), pause)
		if held {
			d = heldDecision(d, ring)
		}
		if d.Phase != st.Phase {
			c.record(Transition{At: now, Kind: EventPhase, From: st.Phase, To: d.Phase,
				Reason: d.Reason, Target: tv, Deadline: utc(deadline)})
			recordEvidence(st, d.Phase, now)
			st.Phase, st.PhaseSince = d.Phase, now
		}
		st.Reason = d.Reason
		return d
	}
	wasPaused, prevPhase := st.Phase == softwareupdate.PhasePaused, st.Phase
	dec := decide()
	st.Deadline = utc(deadline)
	if held && dec.Phase == softwareupdate.PhasePending {
		st.Deadline = time.Time{} // no notice yet, so no deadline (ringgate.go)
	}
	if dec.Phase == softwareupdate.PhasePaused && !wasPaused && evalErr == nil {
		events, err := s.withdraw(ctx, st, now)
		if err != nil {
			evalErr = fmt.Errorf("withdraw %s enforcement: %w", st.Path, err)
		}
		c.record(events...)
	}

	if e := s.enforcers[path]; evalErr == nil && e != nil && st.Facts.Enabled && !st.Facts.InventoryAt.IsZero() {
		failure, stepCmd := st.Failure, st.StepCommand
		held, why := s.offlineGrace(st, pol, dec, deadline, now, cal, calLoc)
		if why != "" {
			note(EventResult, why)
		}
		// On the declarative path the offline grace may withdraw the
		// declaration instead of a step, or give the grace's deadline.
		var act Action
		var skip bool
		var err error
		if path == softwareupdate.PathDeclarative {
			held, act, skip, err = s.declarativeGrace(ctx, st, pol, dec, prevPhase, now, cal, calLoc)
		}
		if err == nil && !skip {
			var step Action
			step, err = e.Step(ctx, st, Input{Target: tgt, Decision: held, Now: now, Policy: pol})
			if len(act.Commands) == 0 && len(act.Events) == 0 {
				act = step
			} else {
				act.Commands, act.Events = append(act.Commands, step.Commands...), append(act.Events, step.Events...)
			}
		}
		if st.StepCommand != stepCmd {
			st.NotNowCount, st.NotNowSince = 0, time.Time{} // a new command: its own answers
		}
		if err != nil {
			evalErr = fmt.Errorf("%s enforcer: %w", path, err)
		} else {
			c.Commands = act.Commands
			c.record(act.Events...)
			if st.Failure != failure {
				if st.Failure != "" {
					note(EventFailure, st.Failure)
				}
				dec = decide()
			}
		}
	}
	if evalErr != nil {
		if ctx.Err() != nil {
			return c, ctx.Err() // the pass was cancelled: not this device's failure
		}
		reason := evaluationFailure(evalErr)
		st.Fail(reason, now, now.Add(EvaluationRetry))
		note(EventFailure, reason)
		dec = decide()
	}
	if !st.Facts.Enabled {
		st.NextDue = time.Time{} // checked out: wait for it to come back
		return c, nil
	}
	next := dec.NextChange
	if st.GraceUntil.After(now) {
		next = st.GraceUntil // the offline grace ends (grace.go)
	}
	for _, t := range []time.Time{st.NextCheck, st.RetryAt} {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if !next.IsZero() && !next.After(now) {
		next = now.Add(time.Second)
	}
	st.NextDue = utc(next)
	return c, nil
}

// historyCap is the room a commit's history gets with its first entry: a
// phase change, a note and a step are common together.
const historyCap = 3

// record appends history entries to c.
func (c *Commit) record(ts ...Transition) {
	if len(ts) == 0 {
		return
	}
	if c.History == nil {
		c.History = make([]Transition, 0, max(len(ts), historyCap))
	}
	c.History = append(c.History, ts...)
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

// Run runs passes on every tick and whenever an event asks for one, until
// ctx ends. After an event it waits the settle time first, so that the
// events of a busy moment share one pass and one commit.
func (s *Scheduler) Run(ctx context.Context) {
	s.running.Store(true)
	defer s.running.Store(false)
	t := time.NewTicker(s.tick)
	defer t.Stop()
	for {
		start := s.clock.Now()
		st, err := s.RunOnce(ctx)
		if s.observe != nil && ctx.Err() == nil {
			s.observe(st, s.clock.Now().Sub(start), err)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Error("scheduler pass failed", "err", err)
		} else if st.Changed > 0 {
			s.log.Debug("scheduler pass", "evaluated", st.Evaluated, "changed", st.Changed, "commands", st.Commands)
		}
		var awaited <-chan time.Time
		if d, ok := s.awaitDue(s.clock.Now()); ok {
			awaited = time.After(d)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-awaited:
		case <-s.wake:
			select {
			case <-ctx.Done():
				return
			case <-time.After(DefaultSettle):
			}
			// Events of the settle time are in this pass.
			select {
			case <-s.wake:
			default:
			}
		}
	}
}
