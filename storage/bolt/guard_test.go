package bolt

import (
	"path/filepath"
	"testing"

	"github.com/sundial-mdm/sundial/storage/storagetest"
)

func TestEnrollmentGuardConformance(t *testing.T) {
	storagetest.RunEnrollmentGuard(t, func(t *testing.T) storagetest.GuardBackend {
		s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
