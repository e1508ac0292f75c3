package pgsql

import (
	"testing"

	"github.com/sundial-mdm/sundial/storage/storagetest"
)

func TestEnrollmentGuardConformance(t *testing.T) {
	testDSN(t)
	storagetest.RunEnrollmentGuard(t, func(t *testing.T) storagetest.GuardBackend {
		db := newTestDB(t)
		s, err := Open(t.Context(), db.dsn, db.option())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
