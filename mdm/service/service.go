// Package service is Sundial's MDM check-in and command service: what happens
// when a device checks in or reports on a command. It is transport-free: the
// HTTP handlers in mdm/httpmdm decode requests, authenticate the device's
// certificate and call it.
package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/micromdm/plist"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/storage"
)

// Errors the HTTP layer maps to statuses.
var (
	// ErrUnauthorized: the certificate is not bound to the enrollment (401).
	ErrUnauthorized = errors.New("certificate is not bound to this enrollment")
	// ErrGone declines a request, e.g. the user channel (410).
	ErrGone = errors.New("declined")
	// ErrNotFound: e.g. an unknown declarative management endpoint (404).
	ErrNotFound = errors.New("not found")
)

// Store is the storage the service needs.
type Store interface {
	storage.CheckinStore
	storage.EnrollmentGuardStore
	Enqueue(ctx context.Context, ids []string, cmd *mdm.Command, now time.Time) error
	TokenUpdate(ctx context.Context, id string, msg *mdm.CheckinMessage, onFirst *mdm.Command, now time.Time) (bool, error)
	StoreBoundReportAndNext(ctx context.Context, id, certHash string, r *mdm.Report, raw []byte, inv *mdm.Inventory, now time.Time) (string, bool, *mdm.Command, error)
	Device(ctx context.Context, id string) (*mdm.Device, error)
	UpdateInventory(ctx context.Context, id string, inv *mdm.Inventory, now time.Time) error
	TouchLastSeen(ctx context.Context, seen map[string]time.Time) error
	InventoryDue(ctx context.Context, before time.Time, limit int) ([]string, error)
	MarkInventoryRequested(ctx context.Context, ids []string, now time.Time) error
}

// Clock tells the time.
type Clock interface{ Now() time.Time }

// Notifier is told when enrollments have new work (so it can push them).
type Notifier interface{ Notify(ids ...string) }

// Sealer encrypts secrets at rest (the bootstrap token, command bodies that
// carry a secret), bound to the record they belong to.
type Sealer interface {
	SealFor(plaintext, ad []byte) ([]byte, error)
	OpenFor(sealed, ad []byte) ([]byte, error)
}

// CheckinHook observes check-ins after they are stored (e.g. to re-push,
// re-deliver declarations or reset push backoff).
type CheckinHook interface {
	Checkin(ctx context.Context, id string, msg *mdm.CheckinMessage)
}

// ResultHandler receives final (and NotNow) reports for commands of the
// request types it registered for.
type ResultHandler interface {
	HandleResult(ctx context.Context, id, requestType string, r *mdm.Report, raw []byte) error
}

// DeclarativeHandler answers DeclarativeManagement check-ins.
type DeclarativeHandler interface {
	Declarative(ctx context.Context, id, endpoint string, data []byte) ([]byte, error)
}

// Identity is the authenticated certificate of a request.
type Identity struct {
	CertHash string
	// BoundUDID is the UDID the certificate was issued for, when it was
	// issued against a challenge bound to one device (ADE); "" otherwise.
	BoundUDID string
	// NotAfter is when the certificate expires; the HTTP layer sets it for
	// Authenticate, where it is recorded with the binding.
	NotAfter time.Time
}

// Service implements the MDM check-in and command protocol.
type Service struct {
	store    Store
	clock    Clock
	log      *slog.Logger
	notifier Notifier
	sealer   Sealer
	ddm      DeclarativeHandler
	hooks    []CheckinHook
	results  map[string][]ResultHandler

	inventoryEvery time.Duration
	bindings       IdentityBindings
	rebindWindow   time.Duration

	seenMu sync.Mutex
	seen   map[string]time.Time
	dirty  chan struct{} // receives when seen stops being empty (Run)

	noRefresh atomic.Bool // see SetInventoryRefresh
}

// SetInventoryRefresh turns the daily inventory refresh in Run on or off
// (default on). With several replicas only the scheduler leader refreshes,
// so no Mac is asked once per replica.
func (s *Service) SetInventoryRefresh(on bool) { s.noRefresh.Store(!on) }

// Option configures a Service.
type Option func(*Service)

// WithNotifier sets who is told about new work (push).
func WithNotifier(n Notifier) Option { return func(s *Service) { s.notifier = n } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithDeclarative sets the declarative management handler.
func WithDeclarative(h DeclarativeHandler) Option { return func(s *Service) { s.ddm = h } }

// WithCheckinHook adds a check-in observer.
func WithCheckinHook(h CheckinHook) Option { return func(s *Service) { s.hooks = append(s.hooks, h) } }

// WithResultHandler routes reports on commands of requestType to h.
func WithResultHandler(requestType string, h ResultHandler) Option {
	return func(s *Service) { s.results[requestType] = append(s.results[requestType], h) }
}

// WithInventoryInterval sets how often inventory is refreshed (default 24 h).
func WithInventoryInterval(d time.Duration) Option { return func(s *Service) { s.inventoryEvery = d } }

// New returns a Service. store, clock and sealer are required.
func New(store Store, clk Clock, sealer Sealer, opts ...Option) *Service {
	if store == nil || clk == nil || sealer == nil {
		panic("service.New: nil store, clock or sealer")
	}
	s := &Service{
		store: store, clock: clk, sealer: sealer,
		log:            slog.New(slog.DiscardHandler),
		results:        map[string][]ResultHandler{},
		inventoryEvery: 24 * time.Hour,
		rebindWindow:   DefaultRebindWindow,
		seen:           map[string]time.Time{},
		dirty:          make(chan struct{}, 1),
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func (s *Service) touch(id string, now time.Time) {
	s.seenMu.Lock()
	if len(s.seen) == 0 {
		select {
		case s.dirty <- struct{}{}:
		default:
		}
	}
	s.seen[id] = now
	s.seenMu.Unlock()
}

// FlushLastSeen writes buffered check-in times to the store.
func (s *Service) FlushLastSeen(ctx context.Context) error {
	s.seenMu.Lock()
	batch := s.seen
	s.seen = make(map[string]time.Time, len(batch))
	s.seenMu.Unlock()
	if err := s.store.TouchLastSeen(ctx, batch); err != nil {
		s.seenMu.Lock()
		for id, t := range batch {
			if old, ok := s.seen[id]; !ok || old.Before(t) {
				s.seen[id] = t
			}
		}
		s.seenMu.Unlock()
		return fmt.Errorf("flush last seen: %w", err)
	}
	return nil
}

// Checkin handles one check-in message. The returned bytes are the response
// body (nil for an empty 200).
func (s *Service) Checkin(ctx context.Context, who Identity, msg *mdm.CheckinMessage) ([]byte, error) {
	id, err := msg.ID()
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	log := checkinLog{l: s.log, id: id, typ: msg.MessageType}
	if msg.MessageType == mdm.Authenticate {
		if msg.UserChannel() {
			return nil, fmt.Errorf("%w: Authenticate on the user channel", ErrGone)
		}
		if who.BoundUDID != "" && who.BoundUDID != msg.UDID {
			log.Warn("authenticate refused: identity was issued for another device")
			return nil, ErrUnauthorized
		}
		ev, usedApproval, err := s.rebindCheck(ctx, id, who, now, log)
		if err != nil {
			return nil, err
		}
		if err := s.store.AuthenticateGuarded(ctx, id, msg, who.CertHash, now, recordBinding(who, ev, usedApproval)); err != nil {
			if errors.Is(err, storage.ErrCertInUse) {
				log.Warn("authenticate refused: certificate bound to another enrollment", "new_cert", who.CertHash)
				return nil, ErrUnauthorized
			}
			return nil, fmt.Errorf("store authenticate: %w", err)
		}
		if ev.Kind == mdm.EventRebound {
			log.Warn("enrollment re-bound to another certificate", "old_cert", ev.OldCert, "new_cert", ev.NewCert, "reason", ev.Reason)
		}
		log.Info("device authenticated", "os_version", msg.OSVersion, "model", msg.ProductName)
		s.runHooks(ctx, id, msg)
		return nil, nil
	}
	bound, err := s.store.CertBound(ctx, id, who.CertHash)
	if err != nil {
		return nil, fmt.Errorf("check certificate binding: %w", err)
	}
	if !bound {
		log.Warn("check-in refused: certificate not bound to enrollment")
		return nil, ErrUnauthorized
	}
	s.touch(id, now)
	if msg.MessageType == mdm.TokenUpdate && msg.UserChannel() {
		// UserAuthenticate is declined, so no user channel exists: keep
		// no record for it (a Mac could otherwise create one per UserID).
		log.Debug("user channel token update ignored: user channels are declined")
		return nil, nil
	}
	var resp []byte
	switch msg.MessageType {
	case mdm.TokenUpdate:
		var inventory *mdm.Command
		if !msg.UserChannel() {
			if inventory, err = inventoryCommand(); err != nil {
				return nil, err
			}
		}
		first, err := s.store.TokenUpdate(ctx, id, msg, inventory, now)
		if err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return nil, ErrUnauthorized
			}
			return nil, fmt.Errorf("store token update: %w", err)
		}
		if first {
			log.Info("device enrolled")
			if inventory != nil && s.notifier != nil {
				s.notifier.Notify(id)
			}
		}
	case mdm.CheckOut:
		if err := s.store.CheckOut(ctx, id, now); err != nil {
			return nil, fmt.Errorf("store check out: %w", err)
		}
		log.Info("device checked out")
	case mdm.UserAuthenticate:
		return nil, fmt.Errorf("%w: user channel is not managed", ErrGone)
	case mdm.SetBootstrapToken:
		var sealed []byte
		if len(msg.BootstrapToken) > 0 {
			if sealed, err = s.sealer.SealFor(msg.BootstrapToken, bootstrapAD(id)); err != nil {
				return nil, fmt.Errorf("seal bootstrap token: %w", err)
			}
		}
		if err := s.store.SetBootstrapToken(ctx, id, sealed, now); err != nil {
			return nil, fmt.Errorf("store bootstrap token: %w", err)
		}
		log.Info("bootstrap token escrowed", "present", sealed != nil)
	case mdm.GetBootstrapToken:
		d, err := s.store.Device(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("load device: %w", err)
		}
		if len(d.BootstrapToken) == 0 {
			return nil, nil
		}
		tok, err := s.sealer.OpenFor(d.BootstrapToken, bootstrapAD(id))
		if err != nil {
			return nil, fmt.Errorf("open bootstrap token: %w", err)
		}
		if resp, err = plist.Marshal(struct{ BootstrapToken []byte }{tok}); err != nil {
			return nil, fmt.Errorf("encode bootstrap token: %w", err)
		}
	case mdm.DeclarativeManagement:
		h := s.ddm
		if h == nil {
			h = notConfigured{}
		}
		if resp, err = h.Declarative(ctx, id, msg.Endpoint, msg.Data); err != nil {
			return nil, err
		}
	}
	s.runHooks(ctx, id, msg)
	return resp, nil
}

// checkinLog logs for one check-in with its enrollment and message type.
// Logger.With would format those on every check-in, though most write no
// record; here they are added only to records the handler will write.
type checkinLog struct {
	l   *slog.Logger
	id  string
	typ mdm.MessageType
}

func (c checkinLog) log(level slog.Level, msg string, args ...any) {
	ctx := context.Background()
	if !c.l.Enabled(ctx, level) {
		return
	}
	c.l.With("enrollment_id", c.id, "request_type", string(c.typ)).Log(ctx, level, msg, args...)
}

func (c checkinLog) Debug(msg string, args ...any) { c.log(slog.LevelDebug, msg, args...) }
func (c checkinLog) Info(msg string, args ...any)  { c.log(slog.LevelInfo, msg, args...) }
func (c checkinLog) Warn(msg string, args ...any)  { c.log(slog.LevelWarn, msg, args...) }
func (c checkinLog) Error(msg string, args ...any) { c.log(slog.LevelError, msg, args...) }

func (s *Service) runHooks(ctx context.Context, id string, msg *mdm.CheckinMessage) {
	for _, h := range s.hooks {
		h.Checkin(ctx, id, msg)
	}
}

// CommandReport handles a report on the command channel and returns the next
// command to send (nil: answer with an empty 200).
func (s *Service) CommandReport(ctx context.Context, who Identity, r *mdm.Report, raw []byte) (*mdm.Command, error) {
	id, err := r.ID()
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	// An acknowledged body with QueryResponses may answer DeviceInformation:
	// its inventory is decoded first and stored with the report in one
	// transaction (the store keeps it only for a DeviceInformation command).
	var (
		inv    *mdm.Inventory
		invErr error
	)
	if r.Status == mdm.Acknowledged && bytes.Contains(raw, queryResponses) {
		inv, invErr = mdm.DecodeDeviceInformation(raw)
	}
	// The store checks the certificate's binding in the transaction that
	// records the report, and records nothing when it is not bound.
	rt, invStored, next, err := s.store.StoreBoundReportAndNext(ctx, id, who.CertHash, r, raw, inv, now)
	if errors.Is(err, storage.ErrNotBound) {
		s.log.Warn("report refused: certificate not bound to enrollment", "enrollment_id", id)
		return nil, ErrUnauthorized
	}
	s.touch(id, now)
	if err != nil {
		return nil, fmt.Errorf("store report: %w", err)
	}
	if next, err = s.unseal(next); err != nil {
		return nil, err
	}
	if rt != "" {
		level := slog.LevelDebug
		if r.Status == mdm.Error || r.Status == mdm.CommandFormatError {
			level = slog.LevelWarn
		}
		// Checked first: the arguments would be boxed for every report,
		// though successes are logged only at Debug.
		if s.log.Enabled(ctx, level) {
			s.log.Log(ctx, level, "command report", "enrollment_id", id, "command_uuid", r.CommandUUID,
				"request_type", rt, "status", string(r.Status), "error_chain", r.ErrorChain)
		}
		if rt == "DeviceInformation" && r.Status == mdm.Acknowledged {
			switch {
			case invStored:
				s.log.Info("inventory updated", "enrollment_id", id, "os_version", inv.OSVersion, "build", inv.BuildVersion)
			case invErr != nil:
				s.log.Warn("inventory not stored", "enrollment_id", id, "err", invErr)
			default:
				// Not decoded (no QueryResponses) or not kept (no device
				// record): the separate write says why.
				if err := s.storeInventory(ctx, id, raw, now); err != nil {
					s.log.Warn("inventory not stored", "enrollment_id", id, "err", err)
				}
			}
		}
		for _, h := range s.results[rt] {
			if err := h.HandleResult(ctx, id, rt, r, raw); err != nil {
				s.log.Error("result handler failed", "enrollment_id", id, "request_type", rt, "err", err)
			}
		}
	}
	return next, nil
}

// queryResponses is the key of a DeviceInformation answer's inventory.
var queryResponses = []byte("QueryResponses")

// storeInventory decodes and stores an inventory in its own transaction,
// for a DeviceInformation answer that StoreReportInventoryAndNext did not
// store.
func (s *Service) storeInventory(ctx context.Context, id string, raw []byte, now time.Time) error {
	inv, err := mdm.DecodeDeviceInformation(raw)
	if err != nil {
		return err
	}
	if err := s.store.UpdateInventory(ctx, id, inv, now); err != nil {
		return err
	}
	s.log.Info("inventory updated", "enrollment_id", id, "os_version", inv.OSVersion, "build", inv.BuildVersion)
	return nil
}

// Enqueue queues cmd for the enrollments and tells the notifier.
func (s *Service) Enqueue(ctx context.Context, ids []string, cmd *mdm.Command) error {
	if err := s.store.Enqueue(ctx, ids, cmd, s.clock.Now()); err != nil {
		return err
	}
	if s.notifier != nil {
		s.notifier.Notify(ids...)
	}
	return nil
}

// inventoryTemplate encodes the DeviceInformation query once per process.
var inventoryTemplate = sync.OnceValues(func() (*mdm.CommandTemplate, error) {
	return mdm.NewCommandTemplate("DeviceInformation", map[string]any{"Queries": mdm.InventoryQueries})
})

func inventoryCommand() (*mdm.Command, error) {
	t, err := inventoryTemplate()
	if err != nil {
		return nil, err
	}
	return t.New(), nil
}

// requestInventory queues DeviceInformation for the enrollments.
func (s *Service) requestInventory(ctx context.Context, ids []string, now time.Time) error {
	for _, id := range ids {
		cmd, err := inventoryCommand()
		if err != nil {
			return err
		}
		if err := s.store.Enqueue(ctx, []string{id}, cmd, now); err != nil {
			return fmt.Errorf("queue inventory: %w", err)
		}
	}
	if err := s.store.MarkInventoryRequested(ctx, ids, now); err != nil {
		return fmt.Errorf("mark inventory requested: %w", err)
	}
	if s.notifier != nil {
		s.notifier.Notify(ids...)
	}
	return nil
}

// SetInventoryInterval changes how often inventory is refreshed.
func (s *Service) SetInventoryInterval(d time.Duration) {
	s.seenMu.Lock()
	s.inventoryEvery = d
	s.seenMu.Unlock()
}

// RefreshInventory queues DeviceInformation for every device whose inventory
// was last requested longer ago than the inventory interval.
func (s *Service) RefreshInventory(ctx context.Context) (int, error) {
	now := s.clock.Now()
	s.seenMu.Lock()
	every := s.inventoryEvery
	s.seenMu.Unlock()
	ids, err := s.store.InventoryDue(ctx, now.Add(-every), 1000)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	return len(ids), s.requestInventory(ctx, ids, now)
}

// refreshEvery is how often Run looks for Macs whose inventory is due.
const refreshEvery = time.Minute

// Run flushes last-seen times within every of a check-in and looks for
// inventory due every refreshEvery until ctx ends, then flushes once more.
// With no check-ins it sleeps until the next inventory look.
func (s *Service) Run(ctx context.Context, every time.Duration) {
	refresh := time.NewTicker(refreshEvery)
	defer refresh.Stop()
	flush := time.NewTimer(every)
	flush.Stop()
	defer flush.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := s.FlushLastSeen(context.WithoutCancel(ctx)); err != nil {
				s.log.Error("final flush failed", "err", err)
			}
			return
		case <-s.dirty:
			// The first check-in since the last flush: flush them all
			// an interval from now.
			flush.Reset(every)
		case <-flush.C:
			if err := s.FlushLastSeen(ctx); err != nil {
				s.log.Error("flush failed", "err", err)
				flush.Reset(every) // kept in memory; try again
			}
		case <-refresh.C:
			if s.noRefresh.Load() {
				continue
			}
			if n, err := s.RefreshInventory(ctx); err != nil {
				s.log.Error("inventory refresh failed", "err", err)
			} else if n > 0 {
				s.log.Info("inventory refresh queued", "devices", n)
			}
		}
	}
}
