package bolt

import (
	"path/filepath"
	"testing"

	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/storagetest"
)

func TestEvidenceConformance(t *testing.T) {
	storagetest.RunEvidence(t, func(t *testing.T) storage.EvidenceStore {
		s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestEvidenceStatesConformance(t *testing.T) {
	storagetest.RunEvidenceStates(t, func(t *testing.T) storagetest.EvidenceStatesStore {
		s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
