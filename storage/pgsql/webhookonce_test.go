package pgsql

import (
	"testing"

	"github.com/sundial-mdm/sundial/storage/storagetest"
)

func TestWebhookOnceConformance(t *testing.T) {
	testDSN(t)
	storagetest.RunWebhookOnce(t, func(t *testing.T) storagetest.WebhookOnceStore {
		return newTestDB(t).open(t)
	})
}

func TestCatalogAnnounceConformance(t *testing.T) {
	testDSN(t)
	storagetest.RunCatalogAnnounce(t, func(t *testing.T) storagetest.CatalogAnnounceStore {
		return newTestDB(t).open(t)
	})
}
