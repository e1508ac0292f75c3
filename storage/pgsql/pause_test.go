package pgsql

import (
	"testing"

	"github.com/sundial-mdm/sundial/storage/storagetest"
)

func TestPausesConformance(t *testing.T) {
	testDSN(t)
	storagetest.RunPauses(t, func(t *testing.T) storagetest.PauseStore {
		return newTestDB(t).open(t)
	})
}

func TestWebhookPauseConformance(t *testing.T) {
	testDSN(t)
	storagetest.RunWebhookPause(t, func(t *testing.T) storagetest.WebhookPauseStore {
		return newTestDB(t).open(t)
	})
}
