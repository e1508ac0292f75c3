package bolt

import (
	"path/filepath"
	"testing"

	"github.com/sundial-mdm/sundial/storage/storagetest"
)

func TestReadinessInputsConformance(t *testing.T) {
	storagetest.RunReadinessInputs(t, func(t *testing.T) storagetest.ReadinessInputStore {
		s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
