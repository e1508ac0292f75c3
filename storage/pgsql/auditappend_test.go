package pgsql

import (
	"testing"

	"github.com/sundial-mdm/sundial/storage/storagetest"
)

func TestAuditAppendConformance(t *testing.T) {
	testDSN(t)
	storagetest.RunAuditAppend(t, func(t *testing.T) storagetest.AuditAppendStore {
		return newTestDB(t).open(t)
	})
}
