package pgsql

import (
	"testing"

	"github.com/sundial-mdm/sundial/storage/storagetest"
)

func TestGroupPhasesConformance(t *testing.T) {
	testDSN(t)
	storagetest.RunGroupPhases(t, func(t *testing.T) storagetest.GroupPhaseStore {
		return newTestDB(t).open(t)
	})
}
