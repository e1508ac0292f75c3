package service_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/internal/seal"
	"github.com/sundial-mdm/sundial/mdm/service"
	"github.com/sundial-mdm/sundial/storage/bolt"
)

// newTestService returns a service on a bbolt file in t's temporary
// directory, with a fake clock at 2026-12-01 09:00 UTC.
func newTestService(t *testing.T, opts ...service.Option) (*service.Service, *bolt.Store, *clock.Fake) {
	t.Helper()
	store, err := bolt.Open(filepath.Join(t.TempDir(), "sundial.db"), &bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	sealer, err := seal.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	return service.New(store, clk, sealer, opts...), store, clk
}
