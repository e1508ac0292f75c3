package pgsql

import (
	"testing"

	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/storagetest"
)

func TestComplianceDaysConformance(t *testing.T) {
	testDSN(t)
	storagetest.RunComplianceDays(t, func(t *testing.T) storage.ComplianceDayStore {
		return newTestDB(t).open(t)
	})
}
