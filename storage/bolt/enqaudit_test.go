package bolt

import (
	"path/filepath"
	"testing"

	"github.com/sundial-mdm/sundial/storage/storagetest"
)

func TestEnqueueAuditedConformance(t *testing.T) {
	storagetest.RunEnqueueAudited(t, func(t *testing.T) storagetest.EnqueueAuditedStore {
		s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), &Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
