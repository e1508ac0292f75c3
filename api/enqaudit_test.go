package api

import (
	"context"
	"errors"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// auditedStoreEnqueuer writes through the store's EnqueueAudited, or
// answers ErrUnsupported as a store without it does.
type auditedStoreEnqueuer struct {
	e         *storeEnqueuer
	supported bool
	calls     int
}

func (a *auditedStoreEnqueuer) EnqueueAudited(ctx context.Context, ids []string, cmd *mdm.Command, entry *scheduler.AuditEntry) error {
	a.calls++
	if !a.supported {
		return errors.ErrUnsupported
	}
	if err := a.e.store.EnqueueAudited(ctx, ids, cmd, a.e.now, entry); err != nil {
		return err
	}
	a.e.batches = append(a.e.batches, slices.Clone(ids))
	return nil
}

// TestEnqueueAudited checks that a single-device enqueue is queued, woken
// and audited exactly once whether the store writes both at once or the
// server falls back to two writes, and that a refused one is not audited.
func TestEnqueueAudited(t *testing.T) {
	for _, supported := range []bool{true, false} {
		e := newBulkEnv(t)
		ae := &auditedStoreEnqueuer{e: e.enq, supported: supported}
		s := New(e.store, e.enq, nil).WithAudit(e.store, func() time.Time { return e.enq.now }).WithAuditedEnqueue(ae)
		r := mux.NewRouter()
		s.Register(r)
		srv := httptest.NewServer(r)
		c := &Client{BaseURL: srv.URL, APIKey: "good-key"}

		cmd, err := mdm.NewCommand("ProfileList", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Enqueue(t.Context(), "MAC-1", cmd.Raw); err != nil {
			t.Fatalf("supported=%v: %v", supported, err)
		}
		other, _ := mdm.NewCommand("ProfileList", nil)
		if _, err := c.Enqueue(t.Context(), "ghost", other.Raw); err == nil {
			t.Errorf("supported=%v: enqueue to an unknown Mac accepted", supported)
		}
		srv.Close()

		if have := e.queued(t, cmd.UUID); !slices.Equal(have, []string{"MAC-1"}) {
			t.Errorf("supported=%v: queued on %v", supported, have)
		}
		if len(e.enq.batches) != 1 || ae.calls != 2 {
			t.Errorf("supported=%v: %d wake-ups, %d audited calls; want 1 and 2", supported, len(e.enq.batches), ae.calls)
		}
		entries, err := e.store.Audit(t.Context(), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 || entries[0].Action != "command.enqueue" || entries[0].Subject != "MAC-1" || entries[0].Actor == "" {
			t.Errorf("supported=%v: audit = %+v, want one command.enqueue for MAC-1", supported, entries)
		}
	}
}
