package pgsql

import (
	"testing"

	"github.com/sundial-mdm/sundial/storage/storagetest"
)

func TestForecastMarksConformance(t *testing.T) {
	testDSN(t)
	storagetest.RunForecastMarks(t, func(t *testing.T) storagetest.ForecastMarkStore {
		return newTestDB(t).open(t)
	})
}
