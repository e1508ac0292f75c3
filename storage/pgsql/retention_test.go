package pgsql

import (
	"testing"

	"github.com/sundial-mdm/sundial/storage/storagetest"
)

func TestRetentionConformance(t *testing.T) {
	testDSN(t)
	storagetest.RunRetention(t, func(t *testing.T) storagetest.RetentionBackend {
		return newTestDB(t).open(t)
	})
}
