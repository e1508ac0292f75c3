package storagetest

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
)

// GroupMembersStore is what RunGroupMembers tests.
type GroupMembersStore interface {
	ManagedOSStore
	GroupMembers(ctx context.Context, group, after string, limit int) ([]string, error)
}

// RunGroupMembers tests listing a group's devices: the default group holds
// enrolled devices without a membership, another group its enrolled
// members; user channels and devices assigned before they enroll are not
// listed; pages follow ID order. newStore must return an empty store; the
// suite closes it.
func RunGroupMembers(t *testing.T, newStore func(t *testing.T) GroupMembersStore) {
	s := newStore(t)
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	for _, id := range []string{"MAC-D", "MAC-A", "MAC-C", "MAC-B", "MAC-E"} {
		enroll(t, s, id, "cert-"+id)
	}
	enrollUser(t, s, "MAC-A", "user1")
	if err := s.PutGroup(ctx, scheduler.Group{ID: "lab", Name: "Lab"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.PutGroup(ctx, scheduler.Group{ID: "empty", Name: "Empty"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.AssignDevices(ctx, "lab", []string{"MAC-D", "MAC-B", "MAC-Z-not-enrolled", "MAC-E"}, nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		group, after string
		limit        int
		want         []string
	}{
		{scheduler.DefaultGroupID, "", 0, []string{"MAC-A", "MAC-C"}},
		{scheduler.DefaultGroupID, "MAC-A", 0, []string{"MAC-C"}},
		{"lab", "", 0, []string{"MAC-B", "MAC-D", "MAC-E"}},
		{"lab", "", 2, []string{"MAC-B", "MAC-D"}},
		{"lab", "MAC-D", 2, []string{"MAC-E"}},
		{"lab", "MAC-C", 0, []string{"MAC-D", "MAC-E"}},
		{"lab", "MAC-E", 0, nil},
		{"empty", "", 0, nil},
	}
	for _, tc := range tests {
		have, err := s.GroupMembers(ctx, tc.group, tc.after, tc.limit)
		if err != nil {
			t.Errorf("GroupMembers(%q, %q, %d): %v", tc.group, tc.after, tc.limit, err)
			continue
		}
		if !slices.Equal(have, tc.want) {
			t.Errorf("GroupMembers(%q, %q, %d) = %q, want %q", tc.group, tc.after, tc.limit, have, tc.want)
		}
	}
	if _, err := s.GroupMembers(ctx, "nope", "", 0); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GroupMembers of an unknown group: err = %v, want ErrNotFound", err)
	}
}
