package bolt

import (
	"path/filepath"
	"testing"

	"github.com/sundial-mdm/sundial/storage/storagetest"
)

func TestCatalogConformance(t *testing.T) {
	storagetest.RunCatalog(t, func(t *testing.T) storagetest.CatalogBackend {
		s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), &Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
