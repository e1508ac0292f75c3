package pgsql

import (
	"testing"

	"github.com/sundial-mdm/sundial/storage/storagetest"
)

func TestReadinessInputsConformance(t *testing.T) {
	testDSN(t)
	storagetest.RunReadinessInputs(t, func(t *testing.T) storagetest.ReadinessInputStore {
		return newTestDB(t).open(t)
	})
}
