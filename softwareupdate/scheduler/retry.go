package scheduler

import (
	"context"
	"fmt"

	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/storage"
)

// AuditAppender writes an audit entry on its own, for admin actions whose
// only change is to update states (a retry).
type AuditAppender interface {
	AppendAudit(ctx context.Context, a *AuditEntry) error
}

// RetryStore is what retries read and audit.
type RetryStore interface {
	StateIDs(ctx context.Context, after string, limit int) ([]string, error)
	States(ctx context.Context, ids []string) ([]*State, error)
	Groups(ctx context.Context) ([]Group, error)
	AuditAppender
}

// DeviceRetrier clears a device's failure and evaluates it at once (the
// Scheduler's Retry).
type DeviceRetrier interface {
	Retry(ctx context.Context, id, actor string) (*State, error)
}

// Retries is the admin's "retry now" for failed Macs: one device or every
// failed device of a group, audited.
type Retries struct {
	sched DeviceRetrier
	store RetryStore
	clock Clock
}

// NewRetries returns the retry service; every argument is required.
func NewRetries(sched DeviceRetrier, store RetryStore, clk Clock) *Retries {
	if sched == nil || store == nil || clk == nil {
		panic("scheduler.NewRetries: nil scheduler, store or clock")
	}
	return &Retries{sched: sched, store: store, clock: clk}
}

// RetryOutcome is what a retry did to one device.
type RetryOutcome struct {
	DeviceID string `json:"device_id"`
	// Cleared is the failure that was cleared; empty when the device had
	// none (nothing was changed).
	Cleared string               `json:"cleared,omitempty"`
	Phase   softwareupdate.Phase `json:"phase,omitempty"`
	Step    string               `json:"step,omitempty"`
}

// retryBatch is how many states a group retry reads at a time.
const retryBatch = 1000

// RetryDevice clears the device's failure, evaluates it now (the next step
// is queued at once) and writes the audit entry. A device without a
// failure is left as it is. An unknown device gives storage.ErrNotFound.
func (r *Retries) RetryDevice(ctx context.Context, actor, id string) (*RetryOutcome, error) {
	if err := checkActor(actor); err != nil {
		return nil, err
	}
	if id == "" || len(id) > 256 {
		return nil, fmt.Errorf("%w: device id must be 1 to 256 bytes", ErrInvalid)
	}
	out, err := r.retry(ctx, actor, id)
	if err != nil {
		return nil, err
	}
	a, err := NewAuditEntry(r.clock.Now().UTC(), actor, "device.retry", id, map[string]string{"failure": out.Cleared}, out)
	if err != nil {
		return nil, err
	}
	if err := r.store.AppendAudit(ctx, a); err != nil {
		return nil, fmt.Errorf("audit retry: %w", err)
	}
	return out, nil
}

// RetryGroup retries every device of group that shows a failure and
// writes one audit entry listing them. An unknown group gives
// storage.ErrNotFound.
func (r *Retries) RetryGroup(ctx context.Context, actor, group string) ([]RetryOutcome, error) {
	if err := checkActor(actor); err != nil {
		return nil, err
	}
	groups, err := r.store.Groups(ctx)
	if err != nil {
		return nil, err
	}
	found := false
	for _, g := range groups {
		found = found || g.ID == group
	}
	if !found {
		return nil, fmt.Errorf("group %q: %w", group, storage.ErrNotFound)
	}
	var failed []string
	for after := ""; ; {
		ids, err := r.store.StateIDs(ctx, after, retryBatch)
		if err != nil {
			return nil, fmt.Errorf("list update states: %w", err)
		}
		if len(ids) == 0 {
			break
		}
		after = ids[len(ids)-1]
		sts, err := r.store.States(ctx, ids)
		if err != nil {
			return nil, fmt.Errorf("load update states: %w", err)
		}
		for _, st := range sts {
			if st != nil && st.GroupID == group && st.Failure != "" {
				failed = append(failed, st.DeviceID)
			}
		}
	}
	outs := make([]RetryOutcome, 0, len(failed))
	var firstErr error
	for _, id := range failed {
		// One device's error must not stop the others: it is reported
		// after the rest were retried.
		out, err := r.retry(ctx, actor, id)
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("retry %s: %w", id, err)
			}
			continue
		}
		outs = append(outs, *out)
	}
	a, err := NewAuditEntry(r.clock.Now().UTC(), actor, "group.retry", group, nil, map[string]any{"devices": outs})
	if err != nil {
		return nil, err
	}
	if err := r.store.AppendAudit(ctx, a); err != nil {
		return nil, fmt.Errorf("audit retry: %w", err)
	}
	return outs, firstErr
}

func (r *Retries) retry(ctx context.Context, actor, id string) (*RetryOutcome, error) {
	sts, err := r.store.States(ctx, []string{id})
	if err != nil {
		return nil, fmt.Errorf("load update state: %w", err)
	}
	var cleared string
	if sts[0] != nil {
		cleared = sts[0].Failure
	}
	st, err := r.sched.Retry(ctx, id, actor)
	if err != nil {
		return nil, err
	}
	out := &RetryOutcome{DeviceID: id, Cleared: cleared}
	if st != nil {
		out.Phase, out.Step = st.Phase, st.Step
	}
	return out, nil
}
