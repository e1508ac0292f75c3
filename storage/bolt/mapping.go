package bolt

import (
	"sync"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// bbolt reads the database through a read-only shared memory mapping of the
// file. Every page a transaction touches stays mapped into Sundial's address
// space, and so counted in its resident set, until the mapping is dropped;
// Linux also maps neighbouring cached pages around each page fault. A
// scheduler sweep or a report over 100,000 Macs therefore leaves most of the
// file resident in Sundial's RSS, although it is only page cache that the
// kernel could reclaim.
//
// The mapping governor keeps the file-backed part of the process's RSS near
// a budget. While transactions run it samples that figure every
// governorInterval and drops the database's mappings (madvise
// MADV_DONTNEED on the read-only shared mapping) when it exceeds the budget,
// at most once per releaseGap so that the hot pages of ordinary traffic are
// not re-faulted over and over, or at once when it exceeds twice the budget
// (a sweep or report streaming through the file). The data is untouched: the
// pages stay in the kernel's page cache and the next read maps them again
// with a minor fault, no disk I/O. The release runs inside a read
// transaction, which keeps bbolt from remapping the file meanwhile.

// DefaultMappedBudget is the file-backed resident memory above which the
// governor drops the database's mappings. At 10,000 Macs in the load test,
// 128 MB let the whole process peak at 149-153 MB; 112 MB at 135 MB, for
// about one more page fault per command round trip. With the server's GC
// target raised (internal/procs/gc.go) its heap runs up to ~40 MB there,
// and 112 MB let the process peak at 138-148 MB; at 100 MB, 129-130 MB,
// with no more faults per request at that fleet size, and PassDue100k
// took 0.63-0.74 s against 0.67-0.69 s (docs/benchmarks.md).
const DefaultMappedBudget = 100 << 20

const (
	governorInterval = 20 * time.Millisecond
	releaseGap       = time.Second
)

type governor struct {
	db     *bbolt.DB
	budget int64
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
	// releases counts how often the mappings were dropped (for tests).
	releases atomic.Int64
}

func startGovernor(db *bbolt.DB, budget int64) *governor {
	g := &governor{db: db, budget: budget, stop: make(chan struct{}), done: make(chan struct{})}
	if budget <= 0 || !canRelease {
		close(g.done)
		return g
	}
	go g.run()
	return g
}

func (g *governor) run() {
	defer close(g.done)
	t := time.NewTicker(governorInterval)
	defer t.Stop()
	var lastTx, lastWrite int64
	var lastRelease time.Time
	for {
		var now time.Time
		select {
		case <-g.stop:
			return
		case now = <-t.C:
		}
		// Sample only while a read transaction is open or when
		// transactions ran since the last tick: an idle server costs one
		// Stats call per tick.
		st := g.db.Stats()
		tx, w := int64(st.TxN), st.TxStats.GetWrite()
		if tx == lastTx && w == lastWrite && st.OpenTxN == 0 {
			continue
		}
		lastTx, lastWrite = tx, w
		if r := fileRSS(); r > 2*g.budget || (r > g.budget && now.Sub(lastRelease) >= releaseGap) {
			g.release()
			lastRelease = now
		}
	}
}

// release drops the database's mappings.
func (g *governor) release() {
	_ = g.db.View(func(tx *bbolt.Tx) error {
		// tx.Size is the used part of the file: no page beyond it is ever
		// read, and the mapping is at least that large.
		if err := dropMapping(g.db.Info().Data, uintptr(tx.Size())); err == nil {
			g.releases.Add(1)
		}
		return nil
	})
}

func (g *governor) close() {
	g.once.Do(func() { close(g.stop) })
	<-g.done
}
