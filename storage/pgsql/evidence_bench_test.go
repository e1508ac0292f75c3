package pgsql

import (
	"context"
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

// BenchmarkEvidenceDay100k: the daily evidence snapshot of 100,000 update
// states in PostgreSQL (the scheduler's JSON state records), in three
// groups: 30 % compliant with a recorded patch, 40 % notified and 30 %
// compliant without one. Setup writes the states through Commit.
func BenchmarkEvidenceDay100k(b *testing.B) {
	s := newTestDB(b).open(b)
	ctx := context.Background()
	now := time.Date(2026, 3, 20, 18, 0, 0, 0, time.UTC)
	deadline := time.Date(2026, 3, 20, 17, 0, 0, 0, time.UTC)
	var commits []scheduler.Commit
	for i := range 100_000 {
		st := &scheduler.State{DeviceID: fmt.Sprintf("BENCH-%08d", i), GroupID: []string{"default", "broad", "late"}[i%3],
			Phase: softwareupdate.PhaseCompliant, Target: "15.2", Deadline: deadline, Reason: "on 15.2 or later",
			Facts: scheduler.Facts{OSVersion: "15.2", Build: "24C101", BoardID: "J413AP", Model: "Mac14,2", Supervised: true, Enabled: true, InventoryAt: now}}
		switch i % 10 {
		case 0, 1, 2:
			st.PatchedTarget, st.PatchedAt, st.PatchedNotice, st.PatchedDeadline = "15.2", now.Add(-time.Duration(i%30)*time.Hour), deadline.Add(-5*24*time.Hour), deadline
		case 3, 4, 5, 6:
			st.Phase, st.Facts.OSVersion, st.NotifiedAt = softwareupdate.PhaseEnforce, "15.1", deadline.Add(-5*24*time.Hour)
		}
		commits = append(commits, scheduler.Commit{State: st})
		if len(commits) == 1000 {
			if err := s.Commit(ctx, commits, now); err != nil {
				b.Fatal(err)
			}
			commits = commits[:0]
		}
	}
	cat, err := catalog.New(catalog.Release{Version: catalog.MustParseVersion("15.2"), Build: "24C101",
		PostingDate: time.Date(2026, 2, 20, 0, 0, 0, 0, time.UTC), SupportedDevices: []string{"J413AP"}})
	if err != nil {
		b.Fatal(err)
	}
	for _, v := range []struct {
		name  string
		store scheduler.Store
	}{
		{"EvidenceStates", s},
		// The StateStore's own paging (StateIDs, then whole States), for
		// comparison: the store wrapped so that it lacks EvidenceStates.
		{"WholeStates", struct{ scheduler.Store }{s}},
	} {
		b.Run(v.name, func(b *testing.B) {
			rec := scheduler.NewEvidenceRecorder(v.store, cat, fixedClock(now), s)
			var alloc uint64
			var managed int
			var cpu time.Duration
			for b.Loop() {
				var ms0, ms1 runtime.MemStats
				runtime.ReadMemStats(&ms0)
				cpu0 := cpuTime()
				d, err := rec.Record(ctx)
				if err != nil {
					b.Fatal(err)
				}
				cpu += cpuTime() - cpu0
				runtime.ReadMemStats(&ms1)
				alloc, managed = ms1.TotalAlloc-ms0.TotalAlloc, d.Rows[0].Managed
			}
			b.ReportMetric(float64(managed), "macs")
			b.ReportMetric(float64(alloc)/1e6, "alloc-MB/op")
			b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
		})
	}
}

// cpuTime is the CPU time this process used (user and system): on a
// shared machine it varies far less than the wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
