package scheduler_test

import (
	"context"
	"runtime"
	"runtime/debug"
	"syscall"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage/bolt"
)

// evidenceFleet turns the benchmark fleet at benchNow (ring 0 enforced,
// ring 1 notified, ring 2 pending) into one with patch records: every
// second Mac working toward a target reached it in the last 30 hours,
// after its notice, some of them after their deadline. It writes through
// the store's Commit, as the scheduler does, and adds a ring plan over
// the three groups and an exception per 1,000 Macs.
func evidenceFleet(b *testing.B, store *bolt.Store, sched *scheduler.Scheduler) {
	b.Helper()
	ctx := context.Background()
	if _, err := sched.RunOnce(ctx); err != nil {
		b.Fatal(err)
	}
	cat := testCatalog(b)
	mgr := scheduler.NewManager(store, cat, clockAt(benchNow), sched)
	patched := 0
	for after, n := "", 0; ; {
		ids, err := store.StateIDs(ctx, after, 1000)
		if err != nil || len(ids) == 0 {
			if err != nil {
				b.Fatal(err)
			}
			break
		}
		after = ids[len(ids)-1]
		sts, err := store.States(ctx, ids)
		if err != nil {
			b.Fatal(err)
		}
		var commits []scheduler.Commit
		for _, st := range sts {
			n++
			if st == nil || st.Target == "" || st.Phase == softwareupdate.PhaseCompliant || n%2 == 0 {
				continue
			}
			at := benchNow.Add(-time.Duration(n%30) * time.Hour)
			st.PatchedTarget, st.PatchedAt, st.PatchedNotice, st.PatchedDeadline = st.Target, at, st.NotifiedAt, st.Deadline
			if st.PatchedNotice.IsZero() {
				st.PatchedNotice = benchD0.Add(-softwareupdate.NotifyWindow)
			}
			st.Phase, st.NotifiedAt = softwareupdate.PhaseCompliant, time.Time{}
			commits = append(commits, scheduler.Commit{State: st})
			patched++
		}
		if err := store.Commit(ctx, commits, benchNow); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := mgr.SetRingPlan(ctx, "bench", scheduler.RingPlan{ID: "macos", Groups: []string{scheduler.DefaultGroupID, "broad", "late"}}); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < benchDevices; i += 1000 {
		if _, err := mgr.SetException(ctx, "bench", scheduler.ScopeDevice, benchID(i), softwareupdate.Exception{
			Exempt: true, Expires: benchNow.AddDate(0, 1, 0), Reason: "benchmark"}); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("evidence fleet: %d Macs patched", patched)
}

type clockAt time.Time

func (c clockAt) Now() time.Time { return time.Time(c) }

// BenchmarkEvidenceDay100k: the daily evidence snapshot of the 100,000-Mac
// fleet on a real bbolt file: read every update state, fold them into the
// fleet's, three groups' (rings') and their releases' figures, store the
// day. The budget is 2 s.
func BenchmarkEvidenceDay100k(b *testing.B) {
	src := benchFixture(b)
	debug.FreeOSMemory()
	store, sched := openCopy(b, src, benchNow)
	defer store.Close()
	evidenceFleet(b, store, sched)
	rec := scheduler.NewEvidenceRecorder(store, testCatalog(b), clockAt(benchNow.Add(6*time.Hour)), store)
	ctx := context.Background()
	debug.FreeOSMemory()
	var alloc uint64
	var anon float64
	var rows, managed int
	var cpu time.Duration
	for b.Loop() {
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		rss := startRSS()
		cpu0 := cpuTime()
		d, err := rec.Record(ctx)
		cpu += cpuTime() - cpu0
		rss.Stop()
		if err != nil {
			b.Fatal(err)
		}
		runtime.ReadMemStats(&ms1)
		alloc, anon = ms1.TotalAlloc-ms0.TotalAlloc, max(anon, rss.maxAnon)
		rows, managed = len(d.Rows), d.Rows[0].Managed
	}
	b.ReportMetric(float64(managed), "macs")
	b.ReportMetric(float64(rows), "rows")
	b.ReportMetric(float64(alloc)/1e6, "alloc-MB/op")
	b.ReportMetric(anon/1e6, "peak-RSS-anon-MB")
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
}

// cpuTime is the CPU time this process used (user and system): on a
// shared machine it varies far less than the wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
