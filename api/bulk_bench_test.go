package api

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/sundial-mdm/sundial/internal/cputime"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/bolt"
)

// BenchmarkBulkEnqueue10k queues one command for 10,000 enrolled Macs in
// one API request, over HTTP, into a durable (fsync) bbolt file. cpu-µs/Mac
// is this process's CPU (server and the in-process client's JSON) per Mac.
func BenchmarkBulkEnqueue10k(b *testing.B) {
	benchBulkEnqueue(b, func() (*mdm.Command, error) { return mdm.NewCommand("ProfileList", nil) })
}

// BenchmarkBulkEnqueueProfile10k is BenchmarkBulkEnqueue10k with an
// InstallProfile of 20 KB of payload that compresses poorly, as a signed
// profile does. file-B/Mac is how much the database file grew a Mac.
func BenchmarkBulkEnqueueProfile10k(b *testing.B) {
	payload := make([]byte, 20<<10)
	for i := range payload {
		payload[i] = byte(uint32(i) * 2654435761 >> 24)
	}
	benchBulkEnqueue(b, func() (*mdm.Command, error) {
		return mdm.NewCommand("InstallProfile", map[string]any{"Payload": payload})
	})
}

func benchBulkEnqueue(b *testing.B, newCommand func() (*mdm.Command, error)) {
	const n = MaxBulkEnqueue
	ctx := context.Background()
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	path := filepath.Join(b.TempDir(), "sundial.db")
	setup, err := bolt.Open(path, &bolt.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 64 {
		wg.Go(func() {
			for i := w; i < n; i += 64 {
				id := fmt.Sprintf("%08X-0000-0000-0000-%012d", i, i)
				ids[i] = id
				if err := setup.Authenticate(ctx, id, &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: id}, MessageType: mdm.Authenticate, Topic: "t"}, "cert-"+id, now); err != nil {
					errs <- err
					return
				}
				if _, err := setup.TokenUpdate(ctx, id, &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: id}, MessageType: mdm.TokenUpdate, Topic: "t", Token: []byte("tok"), PushMagic: "m"}, nil, now); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	if err := setup.PutAPIKey(ctx, storage.APIKey{ID: "k", Hash: HashKey("key"), CreatedAt: now}); err != nil {
		b.Fatal(err)
	}
	setup.Close()
	store, err := bolt.Open(path, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	r := mux.NewRouter()
	New(store, &storeEnqueuer{store: store, now: now}, nil).Register(r)
	srv := httptest.NewServer(r)
	defer srv.Close()
	c := &Client{BaseURL: srv.URL, APIKey: "key"}

	size0 := fileSize(b, path)
	var cpu time.Duration
	b.ResetTimer()
	for b.Loop() {
		cmd, err := newCommand()
		if err != nil {
			b.Fatal(err)
		}
		cpu0 := cputime.Process()
		res, err := c.EnqueueBulk(ctx, ids, cmd.Raw)
		cpu += cputime.Process() - cpu0
		if err != nil || len(res.DeviceIDs) != n {
			b.Fatalf("enqueue: %v", err)
		}
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*n), "cpu-µs/Mac")
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/request")
	b.ReportMetric(float64(fileSize(b, path)-size0)/float64(b.N*n), "file-B/Mac")
}

func fileSize(b *testing.B, path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size()
}
