package pgsql

import (
	"testing"

	"github.com/sundial-mdm/sundial/storage/storagetest"
)

func TestCatalogConformance(t *testing.T) {
	testDSN(t)
	storagetest.RunCatalog(t, func(t *testing.T) storagetest.CatalogBackend {
		db := newTestDB(t)
		s, err := Open(t.Context(), db.dsn, db.option())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
