package bolt

import (
	"path/filepath"
	"testing"

	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/storagetest"
)

func TestWebhookOutboxConformance(t *testing.T) {
	storagetest.RunWebhookOutbox(t, func(t *testing.T) storage.WebhookOutbox {
		s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestWebhookEndpointsConformance(t *testing.T) {
	storagetest.RunWebhookEndpoints(t, func(t *testing.T) storagetest.WebhookStore {
		s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestWebhookCommitConformance(t *testing.T) {
	storagetest.RunWebhookCommit(t, func(t *testing.T) storagetest.WebhookCommitStore {
		s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestWebhookExceptionConformance(t *testing.T) {
	storagetest.RunWebhookException(t, func(t *testing.T) storagetest.WebhookExceptionStore {
		s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
