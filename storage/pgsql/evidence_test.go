package pgsql

import (
	"testing"

	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/storagetest"
)

func TestEvidenceConformance(t *testing.T) {
	testDSN(t)
	storagetest.RunEvidence(t, func(t *testing.T) storage.EvidenceStore {
		return newTestDB(t).open(t)
	})
}

func TestEvidenceStatesConformance(t *testing.T) {
	testDSN(t)
	storagetest.RunEvidenceStates(t, func(t *testing.T) storagetest.EvidenceStatesStore {
		return newTestDB(t).open(t)
	})
}
