package ddm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/service"
)

// ErrInvalid wraps errors for an enforcement the scheduler got wrong; it
// changes nothing.
var ErrInvalid = errors.New("invalid enforcement")

// errNoChange aborts an UpdateDDM that would write nothing new.
var errNoChange = errors.New("no change")

// unchanged reports whether noChange holds for the enrollment's record as
// a read transaction sees it, so that the caller can skip UpdateDDM and its
// write lock (most enrolments and scheduler steps change nothing). A read
// error answers false: the update then runs and reports it.
func (s *Service) unchanged(ctx context.Context, id string, noChange func(*Record) bool) bool {
	r, err := s.store.DDMRecord(ctx, id)
	return err == nil && noChange(r)
}

// Enqueuer queues a command for enrollments and pushes them
// ((*service.Service).Enqueue).
type Enqueuer interface {
	Enqueue(ctx context.Context, ids []string, cmd *mdm.Command) error
}

// EnqueueFunc adapts a function to Enqueuer; it breaks the construction
// cycle between this service and the MDM service that calls it.
type EnqueueFunc func(ctx context.Context, ids []string, cmd *mdm.Command) error

// Enqueue calls f.
func (f EnqueueFunc) Enqueue(ctx context.Context, ids []string, cmd *mdm.Command) error {
	return f(ctx, ids, cmd)
}

// Clock tells the time.
type Clock interface{ Now() time.Time }

// Observer is told about every stored status report, e.g. by the scheduler
// to mark a device compliant or surface a failure. It is called after the
// report is stored, outside any transaction, and must not block for long.
type Observer interface {
	StatusChanged(ctx context.Context, id string, u StatusUpdate)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(ctx context.Context, id string, u StatusUpdate)

// StatusChanged calls f.
func (f ObserverFunc) StatusChanged(ctx context.Context, id string, u StatusUpdate) { f(ctx, id, u) }

// Enforcement states in StatusUpdate and Event.
const (
	StatePending   = "pending"   // delivered or not, not yet reported active and valid
	StateConfirmed = "confirmed" // active and valid with the current server token
	StateFailed    = "failed"    // inactive or invalid: see Reasons
)

// StatusUpdate is what an Observer learns from one status report.
type StatusUpdate struct {
	At         time.Time
	FullReport bool
	Current    Current
	// Enforcement is the desired enforcement after the report (nil: none).
	Enforcement *EnforcementState
	// State is "", StatePending, StateConfirmed or StateFailed.
	State string
	// Reasons are Apple's reasons for a failed enforcement.
	Reasons []Reason
	// Compliant: an enforcement exists and the reported OS version is at
	// or above its target.
	Compliant bool
	// InstallFailed: the report shows install-state failed, or a higher
	// failure-reason count than before (see Current.FailureReason).
	InstallFailed bool
}

// Service is Sundial's declarative management: it answers the
// DeclarativeManagement check-ins (service.DeclarativeHandler), keeps each
// device's declarations and status, and tells devices to sync.
type Service struct {
	store     Store
	q         Enqueuer
	clock     Clock
	log       *slog.Logger
	observers []Observer
}

var (
	_ service.DeclarativeHandler = (*Service)(nil)
	_ service.CheckinHook        = (*Service)(nil)
)

// Option configures a Service.
type Option func(*Service)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithObserver adds an observer of status reports.
func WithObserver(o Observer) Option {
	return func(s *Service) { s.observers = append(s.observers, o) }
}

// New returns a Service. store, q and clk are required.
func New(store Store, q Enqueuer, clk Clock, opts ...Option) *Service {
	if store == nil || q == nil || clk == nil {
		panic("ddm.New: nil store, enqueuer or clock")
	}
	s := &Service{store: store, q: q, clock: clk, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(s)
	}
	return s
}

func userChannel(id string) bool { return strings.Contains(id, ":") }

// setFor builds the enrollment's declaration set from its record.
func setFor(id string, r *Record) (Set, error) {
	if userChannel(id) {
		return EmptySet(), nil
	}
	var p *EnforcementPayload
	if r.Enforcement != nil {
		p = &r.Enforcement.Payload
	}
	return BuildSet(p)
}

// Declarative answers a DeclarativeManagement check-in.
func (s *Service) Declarative(ctx context.Context, id, endpoint string, data []byte) ([]byte, error) {
	if endpoint == "status" {
		return nil, s.status(ctx, id, data)
	}
	rec, err := s.store.DDMRecord(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("load declarative state: %w", err)
	}
	set, err := setFor(id, rec)
	if err != nil {
		return nil, fmt.Errorf("build declarations: %w", err)
	}
	switch {
	case endpoint == "tokens":
		return json.Marshal(TokensResponse{SyncTokens: set.SyncTokens(rec.SetChangedAt)})
	case endpoint == "declaration-items":
		return json.Marshal(set.Items())
	case strings.HasPrefix(endpoint, "declaration/"):
		kind, ident, err := ParseDeclarationPath(endpoint)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", service.ErrNotFound, err)
		}
		d, ok := set.Lookup(kind, ident)
		if !ok {
			return nil, fmt.Errorf("%w: no %s declaration %q", service.ErrNotFound, kind, ident)
		}
		if ident == IDEnforcement && rec.Enforcement != nil && rec.Enforcement.FetchedAt.IsZero() {
			s.noteFetched(ctx, id)
		}
		if s.log.Enabled(ctx, slog.LevelDebug) {
			s.log.DebugContext(ctx, "declaration served", "enrollment_id", id, "declaration", ident)
		}
		return json.Marshal(d)
	default:
		return nil, fmt.Errorf("%w: unknown declarative management endpoint %q", service.ErrNotFound, truncate(endpoint))
	}
}

// noteFetched records the first fetch of the device's enforcement
// declaration (EnforcementState.FetchedAt): one write per enforcement, so
// the scheduler can tell a Mac that holds its declaration from one that
// never fetched it (the offline grace). A failure is logged: the
// declaration is served all the same.
func (s *Service) noteFetched(ctx context.Context, id string) {
	now := s.clock.Now()
	err := s.store.UpdateDDM(ctx, id, func(r *Record) ([]Event, error) {
		if r.Enforcement == nil || !r.Enforcement.FetchedAt.IsZero() {
			return nil, errNoChange
		}
		r.Enforcement.FetchedAt = now
		return nil, nil
	})
	if err != nil && !errors.Is(err, errNoChange) {
		s.log.ErrorContext(ctx, "declaration fetch not recorded", "enrollment_id", id, "err", err)
	}
}

// status stores one status report.
func (s *Service) status(ctx context.Context, id string, data []byte) error {
	rep, err := DecodeStatusReport(data)
	if err != nil {
		return err // an *mdm.ParseError: 400, nothing stored
	}
	now := s.clock.Now()
	var u StatusUpdate
	var prevState string
	var dropped int
	err = s.store.UpdateDDM(ctx, id, func(r *Record) ([]Event, error) {
		prevState, _ = evaluate(r, now)
		prevFailures := r.Status.Current.FailureReason.Count
		st := &r.Status
		if rep.FullReport || st.Items == nil {
			if rep.FullReport {
				st.Items = map[string]json.RawMessage{}
				st.LastFullReport = now
			} else {
				st.Items = make(map[string]json.RawMessage, len(rep.Items))
			}
		}
		maps.Copy(st.Items, rep.Items)
		dropped = capItems(st.Items)
		cur, err := currentFrom(st.Items)
		if err != nil {
			return nil, parseErr("status report", err)
		}
		st.Current = cur
		if v, ok := st.Items[ItemDeclarations]; ok {
			if st.Declarations, err = decodeDeclarationStatuses(v); err != nil {
				return nil, parseErr("status report", err)
			}
		}
		st.Errors = rep.Errors
		st.Reports++
		st.LastReport = now
		state, reasons := evaluate(r, now)
		u = StatusUpdate{At: now, FullReport: rep.FullReport, Current: cur, State: state, Reasons: reasons,
			InstallFailed: cur.InstallState == InstallFailed || cur.FailureReason.Count > prevFailures}
		if r.Enforcement != nil {
			e := *r.Enforcement
			u.Enforcement = &e
			u.Compliant = compliant(cur, e.Payload)
		}
		ev := Event{At: now, FullReport: rep.FullReport, Items: eventItems(rep.Items),
			Current: cur, Enforcement: state, Reasons: reasons}
		return []Event{ev}, nil
	})
	if err != nil {
		var pe *mdm.ParseError
		if errors.As(err, &pe) {
			return err
		}
		return fmt.Errorf("store status report: %w", err)
	}
	// The enrollment is an argument of each record rather than Logger.With,
	// which would format it for every report, most of which log nothing.
	log := s.log
	if log.Enabled(ctx, slog.LevelDebug) {
		log.DebugContext(ctx, "status report stored", "enrollment_id", id, "full", rep.FullReport, "items", len(rep.Items))
	}
	if dropped > 0 {
		log.WarnContext(ctx, "status items dropped: the device's status record is over its bounds", "enrollment_id", id, "dropped", dropped)
	}
	if u.State != prevState {
		switch u.State {
		case StateFailed:
			log.WarnContext(ctx, "enforcement declaration refused by the device", "enrollment_id", id, "reasons", reasonCodes(u.Reasons))
		case StateConfirmed:
			log.InfoContext(ctx, "enforcement declaration confirmed", "enrollment_id", id, "target", u.Enforcement.Payload.TargetOSVersion)
		}
	}
	if u.InstallFailed {
		log.WarnContext(ctx, "software update failed", "enrollment_id", id, "install_state", u.Current.InstallState,
			"failure_reason", u.Current.FailureReason.Reason, "failures", u.Current.FailureReason.Count)
	}
	for _, o := range s.observers {
		o.StatusChanged(ctx, id, u)
	}
	return nil
}

func reasonCodes(rs []Reason) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Code
	}
	return out
}

// evaluate sets the enforcement's Confirmed and Failure from the reported
// declarations and returns its state.
func evaluate(r *Record, now time.Time) (string, []Reason) {
	e := r.Enforcement
	if e == nil {
		return "", nil
	}
	for _, st := range r.Status.Declarations {
		if st.Kind != KindConfiguration || st.Identifier != IDEnforcement || st.ServerToken != e.ServerToken {
			continue
		}
		switch {
		case st.Applied():
			if !e.Confirmed {
				e.Confirmed, e.ConfirmedAt = true, now
			}
			e.Failure = nil
			return StateConfirmed, nil
		case st.Failed():
			e.Confirmed, e.ConfirmedAt = false, time.Time{}
			f := st
			e.Failure = &f
			return StateFailed, st.Reasons
		}
	}
	// Not reported (yet) with the current token, or still being processed.
	e.Confirmed, e.ConfirmedAt, e.Failure = false, time.Time{}, nil
	return StatePending, nil
}

// compliant: the reported OS is at or above the target. A target build is
// met by that build (or supplemental build) or any later version.
func compliant(c Current, p EnforcementPayload) bool {
	if c.OSVersion == "" {
		return false
	}
	cmp := compareVersions(c.OSVersion, p.TargetOSVersion)
	if cmp < 0 {
		return false
	}
	if p.TargetBuildVersion == "" || cmp > 0 {
		return true
	}
	return c.BuildVersion == p.TargetBuildVersion || c.SupplementalBuildVersion == p.TargetBuildVersion
}

// compareVersions compares dotted numeric versions ("15.10" > "15.9",
// "15.4" == "15.4.0"); a malformed version sorts first.
func compareVersions(a, b string) int {
	pa, oka := splitVersion(a)
	pb, okb := splitVersion(b)
	switch {
	case !oka && !okb:
		return strings.Compare(a, b)
	case !oka:
		return -1
	case !okb:
		return 1
	}
	for i := range max(len(pa), len(pb)) {
		var x, y int
		if i < len(pa) {
			x = pa[i]
		}
		if i < len(pb) {
			y = pb[i]
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

func splitVersion(s string) ([]int, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return nil, false
	}
	out := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil, false
		}
		out[i] = n
	}
	return out, true
}

// SetEnforcement makes e the device's enforcement declaration. If that
// changes the device's declaration set, a DeclarativeManagement command
// with the new tokens is queued (and pushed); a change that leaves the set
// as it was queues nothing. changed reports whether a sync was queued.
// Invalid input gives an error wrapping ErrInvalid and changes nothing.
func (s *Service) SetEnforcement(ctx context.Context, id string, e Enforcement) (changed bool, err error) {
	if userChannel(id) {
		return false, fmt.Errorf("%w: enforcement applies to a device channel, not %q", ErrInvalid, id)
	}
	p, err := e.Payload()
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	decl, err := NewDeclaration(TypeEnforcementSpecific, IDEnforcement, p)
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	now := s.clock.Now()
	var tokens SyncTokens
	err = s.store.UpdateDDM(ctx, id, func(r *Record) ([]Event, error) {
		before, err := setFor(id, r)
		if err != nil {
			return nil, err
		}
		old := r.Enforcement
		if old != nil && old.Payload == p && old.Deadline.Equal(e.Deadline) && old.Zone == e.Location.String() {
			return nil, errNoChange
		}
		ne := &EnforcementState{Payload: p, Deadline: e.Deadline, Zone: e.Location.String(), ServerToken: decl.ServerToken, SetAt: now}
		if old != nil {
			ne.FetchedAt = old.FetchedAt // the Mac still holds the version it fetched
		}
		if old != nil && old.ServerToken == decl.ServerToken {
			ne.SetAt, ne.Confirmed, ne.ConfirmedAt, ne.Failure = old.SetAt, old.Confirmed, old.ConfirmedAt, old.Failure
		}
		r.Enforcement = ne
		after, err := setFor(id, r)
		if err != nil {
			return nil, err
		}
		if after.Token != before.Token {
			changed = true
			r.SetChangedAt, r.SyncSentAt = now, now
			tokens = after.SyncTokens(now)
		}
		return nil, nil
	})
	if errors.Is(err, errNoChange) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store enforcement: %w", err)
	}
	if !changed {
		return false, nil
	}
	s.log.InfoContext(ctx, "enforcement declaration set", "enrollment_id", id, "target", p.TargetOSVersion,
		"target_local_date_time", p.TargetLocalDateTime)
	return true, s.sendSync(ctx, id, tokens)
}

// RemoveEnforcement removes the device's enforcement declaration (e.g. once
// it is compliant) and queues a sync; removed is false if there was none.
func (s *Service) RemoveEnforcement(ctx context.Context, id string) (removed bool, err error) {
	now := s.clock.Now()
	var tokens SyncTokens
	noEnforcement := func(r *Record) bool { return r.Enforcement == nil }
	if s.unchanged(ctx, id, noEnforcement) {
		return false, nil
	}
	err = s.store.UpdateDDM(ctx, id, func(r *Record) ([]Event, error) {
		if noEnforcement(r) {
			return nil, errNoChange
		}
		r.Enforcement = nil
		set, err := setFor(id, r)
		if err != nil {
			return nil, err
		}
		r.SetChangedAt, r.SyncSentAt = now, now
		tokens = set.SyncTokens(now)
		return nil, nil
	})
	if errors.Is(err, errNoChange) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("remove enforcement: %w", err)
	}
	s.log.InfoContext(ctx, "enforcement declaration removed", "enrollment_id", id)
	return true, s.sendSync(ctx, id, tokens)
}

func (s *Service) sendSync(ctx context.Context, id string, tokens SyncTokens) error {
	cmd, err := syncCommand(tokens)
	if err != nil {
		return fmt.Errorf("build DeclarativeManagement command: %w", err)
	}
	if err := s.q.Enqueue(ctx, []string{id}, cmd); err != nil {
		return fmt.Errorf("queue DeclarativeManagement for %s: %w", id, err)
	}
	return nil
}

// Resync queues a DeclarativeManagement command with the current tokens for
// each enrollment (and pushes), e.g. for a device that has not confirmed its
// enforcement.
func (s *Service) Resync(ctx context.Context, ids ...string) error {
	now := s.clock.Now()
	for _, id := range ids {
		var tokens SyncTokens
		err := s.store.UpdateDDM(ctx, id, func(r *Record) ([]Event, error) {
			set, err := setFor(id, r)
			if err != nil {
				return nil, err
			}
			tokens = set.SyncTokens(r.SetChangedAt)
			r.SyncSentAt, r.NeedsSync = now, false
			return nil, nil
		})
		if err != nil {
			return fmt.Errorf("resync %s: %w", id, err)
		}
		if err := s.sendSync(ctx, id, tokens); err != nil {
			return err
		}
		s.log.InfoContext(ctx, "declarative sync queued", "enrollment_id", id)
	}
	return nil
}

// Unconfirmed lists devices whose enforcement the device has not confirmed
// (reported active and valid with the current server token) and whose
// personal deadline is before `before`.
func (s *Service) Unconfirmed(ctx context.Context, before time.Time) ([]string, error) {
	return s.store.DDMUnconfirmed(ctx, before, 0)
}

// EnsureDelivery re-sends DeclarativeManagement (and pushes) to every device
// whose enforcement is unconfirmed within `ahead` of its deadline and which
// was not sent a sync in the last `every`. It returns how many were re-sent.
func (s *Service) EnsureDelivery(ctx context.Context, ahead, every time.Duration) (int, error) {
	now := s.clock.Now()
	ids, err := s.store.DDMUnconfirmed(ctx, now.Add(ahead), 0)
	if err != nil {
		return 0, fmt.Errorf("list unconfirmed enforcements: %w", err)
	}
	n := 0
	for _, id := range ids {
		r, err := s.store.DDMRecord(ctx, id)
		if err != nil {
			return n, err
		}
		if !r.SyncSentAt.IsZero() && now.Sub(r.SyncSentAt) < every {
			continue
		}
		if err := s.Resync(ctx, id); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// Checkin re-delivers declarations to a re-enrolled device: Authenticate
// keeps the desired set but marks it unconfirmed (an unenrolled Mac drops
// its declarations), and the next TokenUpdate queues a sync. It implements
// service.CheckinHook.
func (s *Service) Checkin(ctx context.Context, id string, msg *mdm.CheckinMessage) {
	if userChannel(id) {
		return
	}
	switch msg.MessageType {
	case mdm.Authenticate:
		nothingToReset := func(r *Record) bool { return r.Enforcement == nil && len(r.Status.Declarations) == 0 }
		if s.unchanged(ctx, id, nothingToReset) {
			return
		}
		err := s.store.UpdateDDM(ctx, id, func(r *Record) ([]Event, error) {
			if nothingToReset(r) {
				return nil, errNoChange
			}
			r.NeedsSync = r.Enforcement != nil
			if r.Enforcement != nil {
				r.Enforcement.Confirmed, r.Enforcement.ConfirmedAt, r.Enforcement.Failure = false, time.Time{}, nil
				r.Enforcement.FetchedAt = time.Time{}
			}
			r.Status.Declarations = nil
			delete(r.Status.Items, ItemDeclarations)
			return nil, nil
		})
		if err != nil && !errors.Is(err, errNoChange) {
			s.log.ErrorContext(ctx, "declarative state not reset at re-enrollment", "enrollment_id", id, "err", err)
		}
	case mdm.TokenUpdate:
		r, err := s.store.DDMRecord(ctx, id)
		if err != nil {
			s.log.ErrorContext(ctx, "declarative state not read", "enrollment_id", id, "err", err)
			return
		}
		if !r.NeedsSync {
			return
		}
		if err := s.Resync(ctx, id); err != nil {
			s.log.ErrorContext(ctx, "declarations not re-delivered", "enrollment_id", id, "err", err)
		}
	}
}

// Record returns the enrollment's declarative state.
func (s *Service) Record(ctx context.Context, id string) (*Record, error) {
	return s.store.DDMRecord(ctx, id)
}

// History returns the enrollment's status history, oldest first.
func (s *Service) History(ctx context.Context, id string) ([]Event, error) {
	return s.store.DDMHistory(ctx, id)
}
