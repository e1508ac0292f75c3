package bolt

import (
	"path/filepath"
	"testing"

	"github.com/sundial-mdm/sundial/storage/storagetest"
)

func TestGroupMembersConformance(t *testing.T) {
	storagetest.RunGroupMembers(t, func(t *testing.T) storagetest.GroupMembersStore {
		s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), &Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
