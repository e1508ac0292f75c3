package pgsql

import (
	"testing"

	"github.com/sundial-mdm/sundial/storage/storagetest"
)

func TestCountsConformance(t *testing.T) {
	testDSN(t)
	storagetest.RunCounts(t, func(t *testing.T) storagetest.CountsStore {
		return newTestDB(t).open(t)
	})
}
