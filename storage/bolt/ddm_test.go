package bolt

import (
	"path/filepath"
	"testing"

	"github.com/sundial-mdm/sundial/mdm/ddm"
	"github.com/sundial-mdm/sundial/storage/storagetest"
)

func TestDDMConformance(t *testing.T) {
	storagetest.RunDDM(t, func(t *testing.T) ddm.Store {
		s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), &Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
