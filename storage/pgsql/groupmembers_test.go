package pgsql

import (
	"testing"

	"github.com/sundial-mdm/sundial/storage/storagetest"
)

func TestGroupMembersConformance(t *testing.T) {
	testDSN(t)
	storagetest.RunGroupMembers(t, func(t *testing.T) storagetest.GroupMembersStore {
		return newTestDB(t).open(t)
	})
}
