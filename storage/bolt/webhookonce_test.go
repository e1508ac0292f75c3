package bolt

import (
	"path/filepath"
	"testing"

	"github.com/sundial-mdm/sundial/storage/storagetest"
)

func TestWebhookOnceConformance(t *testing.T) {
	storagetest.RunWebhookOnce(t, func(t *testing.T) storagetest.WebhookOnceStore {
		s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestCatalogAnnounceConformance(t *testing.T) {
	storagetest.RunCatalogAnnounce(t, func(t *testing.T) storagetest.CatalogAnnounceStore {
		s, err := Open(filepath.Join(t.TempDir(), "sundial.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
