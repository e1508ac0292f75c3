package pgsql

import (
	"testing"

	"github.com/sundial-mdm/sundial/storage/storagetest"
)

func TestRingPlansConformance(t *testing.T) {
	testDSN(t)
	storagetest.RunRingPlans(t, func(t *testing.T) storagetest.RingStore {
		return newTestDB(t).open(t)
	})
}
