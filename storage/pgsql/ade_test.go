package pgsql

import (
	"testing"

	"github.com/sundial-mdm/sundial/storage/storagetest"
)

func TestADEConformance(t *testing.T) {
	testDSN(t)
	storagetest.RunADE(t, func(t *testing.T) storagetest.ADEBackend {
		db := newTestDB(t)
		s, err := Open(t.Context(), db.dsn, db.option())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
