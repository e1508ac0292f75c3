package storagetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// EnqueueAuditedStore is a store that queues a command and writes its
// audit entry in one transaction.
type EnqueueAuditedStore interface {
	storage.All
	scheduler.AuditLog
	EnqueueAudited(ctx context.Context, ids []string, cmd *mdm.Command, now time.Time, a *scheduler.AuditEntry) error
}

// RunEnqueueAudited checks EnqueueAudited: the command is queued and the
// entry logged together; a refused enqueue (unknown enrollment, UUID in
// use) or a missing entry writes neither.
func RunEnqueueAudited(t *testing.T, newStore func(t *testing.T) EnqueueAuditedStore) {
	ctx := context.Background()
	s := newStore(t)
	defer s.Close()
	enroll(t, s, "AAA-1", "h1")
	c := cmd(t, "A")
	entry := audit(t, "command.enqueue", "AAA-1", nil, map[string]string{"command_uuid": c.UUID})
	if err := s.EnqueueAudited(ctx, []string{"AAA-1"}, c, t0, entry); err != nil {
		t.Fatal(err)
	}
	if got := mustNext(t, s, "AAA-1", idle("AAA-1"), t0); got == nil || got.UUID != c.UUID {
		t.Fatalf("next = %+v, want the audited command", got)
	}
	logged, err := s.Audit(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(logged) != 1 || logged[0].Action != "command.enqueue" || logged[0].Subject != "AAA-1" || logged[0].Seq != entry.Seq {
		t.Fatalf("audit = %+v, want the one entry (seq %d)", logged, entry.Seq)
	}

	refused := []struct {
		name string
		ids  []string
		c    *mdm.Command
		a    *scheduler.AuditEntry
		want error
	}{
		{"unknown enrollment", []string{"AAA-1", "ghost"}, cmd(t, "B"), audit(t, "command.enqueue", "ghost", nil, nil), storage.ErrNotFound},
		{"UUID in use", []string{"AAA-1"}, c, audit(t, "command.enqueue", "AAA-1", nil, nil), storage.ErrExists},
		{"no entry", []string{"AAA-1"}, cmd(t, "C"), nil, nil},
	}
	for _, tc := range refused {
		err := s.EnqueueAudited(ctx, tc.ids, tc.c, t0, tc.a)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	cmds, err := s.Commands(ctx, "AAA-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) != 1 {
		t.Errorf("%d commands after refused enqueues, want 1", len(cmds))
	}
	if logged, _ := s.Audit(ctx, 0, 0); len(logged) != 1 {
		t.Errorf("%d audit entries after refused enqueues, want 1", len(logged))
	}
}
