package bolt

import (
	"path/filepath"
	"testing"

	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/storagetest"
)

func TestLeaseConformance(t *testing.T) {
	storagetest.RunLease(t, func(t *testing.T) storage.LeaseStore {
		s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), &Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
