package pgsql

import (
	"testing"

	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/storagetest"
)

func TestWebhookOutboxConformance(t *testing.T) {
	testDSN(t)
	storagetest.RunWebhookOutbox(t, func(t *testing.T) storage.WebhookOutbox {
		return newTestDB(t).open(t)
	})
}

func TestWebhookEndpointsConformance(t *testing.T) {
	testDSN(t)
	storagetest.RunWebhookEndpoints(t, func(t *testing.T) storagetest.WebhookStore {
		return newTestDB(t).open(t)
	})
}

func TestWebhookCommitConformance(t *testing.T) {
	testDSN(t)
	storagetest.RunWebhookCommit(t, func(t *testing.T) storagetest.WebhookCommitStore {
		return newTestDB(t).open(t)
	})
}

func TestWebhookExceptionConformance(t *testing.T) {
	testDSN(t)
	storagetest.RunWebhookException(t, func(t *testing.T) storagetest.WebhookExceptionStore {
		return newTestDB(t).open(t)
	})
}
