package scheduler

import (
	"context"
	"errors"
	"fmt"

	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/storage"
)

// Reevaluator is told when admin changes require devices to be evaluated
// again (the Scheduler).
type Reevaluator interface {
	Reevaluate()
	Touch(ids ...string)
	// FreshNotice restarts a device's minimum notice from now.
	FreshNotice(ctx context.Context, id string) error
}

// Manager is the admin surface of the Managed OS engine: policies, groups,
// exceptions, a device's phase and history, the audit log. Every change is
// validated first (bad input changes nothing) and audited.
type Manager struct {
	store Store
	cat   *catalog.Catalog
	clock Clock
	sched Reevaluator
}

// NewManager returns a Manager. sched may be nil (no re-evaluation).
func NewManager(store Store, cat *catalog.Catalog, clk Clock, sched Reevaluator) *Manager {
	if store == nil || cat == nil || clk == nil {
		panic("scheduler.NewManager: nil store, catalog or clock")
	}
	return &Manager{store: store, cat: cat, clock: clk, sched: sched}
}

func (m *Manager) reevaluate() {
	if m.sched != nil {
		m.sched.Reevaluate()
	}
}

func checkActor(actor string) error {
	if actor == "" || len(actor) > softwareupdate.MaxExceptionGrantedBy {
		return fmt.Errorf("%w: actor must be 1 to %d bytes", ErrInvalid, softwareupdate.MaxExceptionGrantedBy)
	}
	return nil
}

// SetPolicy validates p against the catalog (unknown version, deadline in
// the past, unknown time zone, absurd numbers: a *softwareupdate.ValidationError
// and nothing saved), stores it as group's policy with an audit entry
// (before and after), and re-evaluates the fleet. Changing a policy gives
// every affected Mac fresh minimum notice.
func (m *Manager) SetPolicy(ctx context.Context, actor, group string, p softwareupdate.Policy) (*PolicyRecord, error) {
	if err := checkActor(actor); err != nil {
		return nil, err
	}
	now := m.clock.Now()
	if err := p.Validate(now, m.cat); err != nil {
		return nil, err
	}
	before, err := m.Policy(ctx, group)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}
	var beforeV any
	if before != nil {
		beforeV = before.Policy
	}
	a, err := NewAuditEntry(now, actor, "policy.set", group, beforeV, p)
	if err != nil {
		return nil, err
	}
	rec, err := m.store.PutPolicy(ctx, PolicyRecord{GroupID: group, Policy: p, UpdatedAt: now.UTC(), UpdatedBy: actor}, a)
	if err != nil {
		return nil, fmt.Errorf("store policy: %w", err)
	}
	m.reevaluate()
	return rec, nil
}

// Policy returns a group's policy (storage.ErrNotFound if it has none).
func (m *Manager) Policy(ctx context.Context, group string) (*PolicyRecord, error) {
	ps, err := m.store.Policies(ctx)
	if err != nil {
		return nil, fmt.Errorf("load policies: %w", err)
	}
	for i := range ps {
		if ps[i].GroupID == group {
			return &ps[i], nil
		}
	}
	return nil, fmt.Errorf("policy of group %s: %w", group, storage.ErrNotFound)
}

// CreateGroup creates (or renames) a group.
func (m *Manager) CreateGroup(ctx context.Context, actor, id, name string) (*Group, error) {
	if err := checkActor(actor); err != nil {
		return nil, err
	}
	if !ValidGroupID(id) {
		return nil, fmt.Errorf("%w: group id %q: 1 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit", ErrInvalid, truncate(id))
	}
	if len(name) > 200 {
		return nil, fmt.Errorf("%w: group name over 200 bytes", ErrInvalid)
	}
	now := m.clock.Now().UTC()
	g := Group{ID: id, Name: name, CreatedAt: now}
	a, err := NewAuditEntry(now, actor, "group.put", id, nil, g)
	if err != nil {
		return nil, err
	}
	if err := m.store.PutGroup(ctx, g, a); err != nil {
		return nil, fmt.Errorf("store group: %w", err)
	}
	return &g, nil
}

// DeleteGroup deletes a group; its members return to the default group.
func (m *Manager) DeleteGroup(ctx context.Context, actor, id string) error {
	if err := checkActor(actor); err != nil {
		return err
	}
	a, err := NewAuditEntry(m.clock.Now().UTC(), actor, "group.delete", id, id, nil)
	if err != nil {
		return err
	}
	if err := m.store.DeleteGroup(ctx, id, a); err != nil {
		return fmt.Errorf("delete group: %w", err)
	}
	m.reevaluate()
	return nil
}

// Groups lists the groups.
func (m *Manager) Groups(ctx context.Context) ([]Group, error) { return m.store.Groups(ctx) }

// AssignDevices moves devices into a group and re-evaluates them.
func (m *Manager) AssignDevices(ctx context.Context, actor, group string, ids []string) error {
	if err := checkActor(actor); err != nil {
		return err
	}
	if len(ids) == 0 {
		return fmt.Errorf("%w: no devices given", ErrInvalid)
	}
	now := m.clock.Now().UTC()
	before, err := m.store.GroupsOf(ctx, ids)
	if err != nil {
		return err
	}
	a, err := NewAuditEntry(now, actor, "group.assign", group, map[string]any{"devices": ids, "groups": before}, map[string]any{"devices": ids, "group": group})
	if err != nil {
		return err
	}
	if err := m.store.AssignDevices(ctx, group, ids, a); err != nil {
		return fmt.Errorf("assign devices: %w", err)
	}
	if m.sched != nil {
		m.sched.Touch(ids...)
	}
	return nil
}

// SetException grants an exception to a device or a group. GrantedBy
// defaults to actor. The exception is validated (exactly one of exemption
// and deadline override, an expiry within a year, a reason); bad input
// changes nothing.
func (m *Manager) SetException(ctx context.Context, actor string, scope ExceptionScope, id string, ex softwareupdate.Exception) (*ExceptionRecord, error) {
	if err := checkActor(actor); err != nil {
		return nil, err
	}
	if scope != ScopeDevice && scope != ScopeGroup {
		return nil, fmt.Errorf("%w: scope %q: device or group", ErrInvalid, truncate(string(scope)))
	}
	if id == "" {
		return nil, fmt.Errorf("%w: no %s given", ErrInvalid, scope)
	}
	if ex.GrantedBy == "" {
		ex.GrantedBy = actor
	}
	now := m.clock.Now()
	if err := ex.Validate(now); err != nil {
		return nil, err
	}
	ex.Expires, ex.DeadlineOverride = utc(ex.Expires), utc(ex.DeadlineOverride)
	rec := ExceptionRecord{Scope: scope, ID: id, Exception: ex, CreatedAt: now.UTC()}
	var before any
	if old, _ := m.exception(ctx, scope, id); old != nil {
		before = old.Exception
	}
	a, err := NewAuditEntry(now.UTC(), actor, "exception.set", string(scope)+"/"+id, before, ex)
	if err != nil {
		return nil, err
	}
	if err := m.store.PutException(ctx, rec, a); err != nil {
		return nil, fmt.Errorf("store exception: %w", err)
	}
	m.changed(scope, id)
	return &rec, nil
}

// ClearException removes an exception. A device rejoins its policy with
// fresh minimum notice counted from now; a group's devices rejoin with the
// notice counted from when they were first seen non-compliant.
func (m *Manager) ClearException(ctx context.Context, actor string, scope ExceptionScope, id string) error {
	if err := checkActor(actor); err != nil {
		return err
	}
	old, err := m.exception(ctx, scope, id)
	if err != nil {
		return err
	}
	a, err := NewAuditEntry(m.clock.Now().UTC(), actor, "exception.clear", string(scope)+"/"+id, old.Exception, nil)
	if err != nil {
		return err
	}
	if err := m.store.DeleteException(ctx, scope, id, a); err != nil {
		return fmt.Errorf("delete exception: %w", err)
	}
	m.changed(scope, id)
	if scope == ScopeDevice && m.sched != nil {
		if err := m.sched.FreshNotice(ctx, id); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("exception cleared; restart notice: %w", err)
		}
	}
	return nil
}

func (m *Manager) changed(scope ExceptionScope, id string) {
	if m.sched == nil {
		return
	}
	if scope == ScopeDevice {
		m.sched.Reevaluate() // exceptions are cached by the scheduler
		m.sched.Touch(id)
		return
	}
	m.sched.Reevaluate()
}

func (m *Manager) exception(ctx context.Context, scope ExceptionScope, id string) (*ExceptionRecord, error) {
	es, err := m.store.Exceptions(ctx)
	if err != nil {
		return nil, fmt.Errorf("load exceptions: %w", err)
	}
	for i := range es {
		if es[i].Scope == scope && es[i].ID == id {
			return &es[i], nil
		}
	}
	return nil, fmt.Errorf("%s exception %s: %w", scope, id, storage.ErrNotFound)
}

// Exceptions lists every exception (active or expired).
func (m *Manager) Exceptions(ctx context.Context) ([]ExceptionRecord, error) {
	return m.store.Exceptions(ctx)
}

// DeviceReport is a device's Managed OS status for reports and the CLI.
type DeviceReport struct {
	DeviceID string `json:"device_id"`
	GroupID  string `json:"group_id"`
	State    *State `json:"state,omitempty"` // nil: never evaluated
	// Status is the state an admin sees (scheduler.Status): the phase,
	// deferring or needs-bootstrap-token; empty when never evaluated.
	Status    string           `json:"status,omitempty"`
	Exception *ExceptionRecord `json:"exception,omitempty"`
	History   []Transition     `json:"history"`
	// DeviceTimeZone is the Mac's own time zone as its agent last reported
	// it; empty when unknown. The admin API fills it in.
	DeviceTimeZone string `json:"device_time_zone,omitempty"`
}

// Device returns a device's phase, deadline, exception and the last
// historyLimit history entries (<= 0: all).
func (m *Manager) Device(ctx context.Context, id string, historyLimit int) (*DeviceReport, error) {
	sts, err := m.store.States(ctx, []string{id})
	if err != nil {
		return nil, err
	}
	groups, err := m.store.GroupsOf(ctx, []string{id})
	if err != nil {
		return nil, err
	}
	h, err := m.store.History(ctx, id, historyLimit)
	if err != nil {
		return nil, err
	}
	r := &DeviceReport{DeviceID: id, GroupID: groups[0], State: sts[0], History: h}
	if r.State != nil {
		r.Status = Status(r.State)
	}
	if ex, err := m.exception(ctx, ScopeDevice, id); err == nil {
		r.Exception = ex
	} else if ex, err := m.exception(ctx, ScopeGroup, groups[0]); err == nil {
		r.Exception = ex
	}
	return r, nil
}

// Audit lists audit entries after seq `after`.
func (m *Manager) Audit(ctx context.Context, after uint64, limit int) ([]AuditEntry, error) {
	return m.store.Audit(ctx, after, limit)
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
