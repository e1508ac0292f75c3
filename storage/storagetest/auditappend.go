package storagetest

import (
	"context"
	"slices"
	"testing"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// AuditAppendStore is a store with an audit log that takes entries on
// their own.
type AuditAppendStore interface {
	scheduler.AuditAppender
	scheduler.AuditLog
	scheduler.GroupStore
	Close() error
}

// RunAuditAppend checks AppendAudit: entries get the next sequence after
// the ones written with other changes, in order, and a nil entry is refused.
func RunAuditAppend(t *testing.T, newStore func(t *testing.T) AuditAppendStore) {
	ctx := context.Background()
	s := newStore(t)
	defer s.Close()
	if err := s.PutGroup(ctx, scheduler.Group{ID: "pilot"}, audit(t, "group.create", "pilot", nil, scheduler.Group{ID: "pilot"})); err != nil {
		t.Fatal(err)
	}
	first := audit(t, "device.retry", "MAC-1", map[string]string{"failure": "InstallFailed"}, nil)
	if err := s.AppendAudit(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAudit(ctx, audit(t, "group.retry", "pilot", nil, map[string]any{"devices": []string{"MAC-2"}})); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAudit(ctx, nil); err == nil {
		t.Error("nil entry accepted")
	}
	all, err := s.Audit(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for i, a := range all {
		actions = append(actions, a.Action+" "+a.Subject)
		if i > 0 && a.Seq <= all[i-1].Seq {
			t.Errorf("entry %d out of order: %+v", i, a)
		}
	}
	if want := []string{"group.create pilot", "device.retry MAC-1", "group.retry pilot"}; !slices.Equal(actions, want) {
		t.Fatalf("audit = %v, want %v", actions, want)
	}
	if first.Seq != all[1].Seq || string(all[1].Before) != `{"failure":"InstallFailed"}` || all[1].Actor != "admin@example.com" {
		t.Errorf("appended entry = %+v (seq set to %d)", all[1], first.Seq)
	}
}
