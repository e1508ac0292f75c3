package pgsql

import (
	"testing"

	"github.com/sundial-mdm/sundial/storage/storagetest"
)

func TestEnqueueAuditedConformance(t *testing.T) {
	testDSN(t)
	storagetest.RunEnqueueAudited(t, func(t *testing.T) storagetest.EnqueueAuditedStore {
		return newTestDB(t).open(t)
	})
}
