package bolt

import (
	"path/filepath"
	"testing"

	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/storagetest"
)

func TestComplianceDaysConformance(t *testing.T) {
	storagetest.RunComplianceDays(t, func(t *testing.T) storage.ComplianceDayStore {
		s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
