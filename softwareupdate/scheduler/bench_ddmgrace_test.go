package scheduler_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/mdm/ddm"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/declarative"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage/bolt"
)

// The declarative deadline fixture: benchDDMDevices Macs (the mix of
// benchEnroll) on the declarative path with their declarations written at
// notice. The 6,000 that need an update have one; 1,000 of them (i % 10 ==
// 3) never fetched it and were not seen since, so the pass at the deadline
// withdraws those.
const benchDDMDevices = 10_000

func newDDMBench(store *bolt.Store, clk scheduler.Clock, cat testing.TB, opts ...scheduler.Option) (*scheduler.Scheduler, *ddm.Service) {
	dm := ddm.New(store, ddm.EnqueueFunc(func(ctx context.Context, ids []string, cmd *mdm.Command) error {
		return store.Enqueue(ctx, ids, cmd, clk.Now())
	}), clk)
	opts = append([]scheduler.Option{scheduler.WithEnforcer(softwareupdate.PathDeclarative, declarative.New(dm, agentZones{}, nil))}, opts...)
	return scheduler.New(store, store, testCatalog(cat), clk, opts...), dm
}

func buildDDMFixture(b *testing.B, path string) error {
	ctx := context.Background()
	store, err := bolt.Open(path, &bolt.Options{NoSync: true})
	if err != nil {
		return err
	}
	defer store.Close()
	for i := range benchDDMDevices {
		if err := benchEnroll(ctx, store, i); err != nil {
			return err
		}
	}
	clk := clock.NewFake(benchD0.Add(-softwareupdate.NotifyWindow))
	sched, dm := newDDMBench(store, clk, b)
	mgr := scheduler.NewManager(store, testCatalog(b), clk, sched)
	if _, err := mgr.SetPolicy(ctx, "bench", scheduler.DefaultGroupID, softwareupdate.Policy{Mode: softwareupdate.ModeManual, MinimumVersion: "15.2",
		Date: benchD0.Format(time.DateOnly), TimeOfDay: "17:00", TimeZone: "UTC", Path: softwareupdate.PathDeclarative}); err != nil {
		return err
	}
	if _, err := sched.RunOnce(ctx); err != nil {
		return err
	}
	clk.Set(clk.Now().Add(time.Hour))
	for i := range benchDDMDevices {
		if i%10 == 3 {
			continue // never fetched: offline since before its notice
		}
		if _, err := dm.Declarative(ctx, benchID(i), "declaration/configuration/"+ddm.IDEnforcement, nil); err != nil && i%10 < 6 {
			return err // Macs 0-5 of ten need 15.2 or 14.6.1 and have a declaration
		}
	}
	return nil
}

// BenchmarkDeclarativeDeadlinePass: the pass at the deadline (D + 1 min)
// over benchDDMDevices declarative Macs, 6,000 of them moving into
// countdown, with the offline grace off and on (each reads its
// declaration's delivery; 1,000 are withdrawn with an inventory queued).
func BenchmarkDeclarativeDeadlinePass(b *testing.B) {
	src := filepath.Join(b.TempDir(), "fleet.db")
	if err := buildDDMFixture(b, src); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		grace time.Duration
	}{{"grace=off", 0}, {"grace=4h", scheduler.DefaultOfflineGrace}} {
		b.Run(tc.name, func(b *testing.B) {
			var last scheduler.Stats
			for b.Loop() {
				b.StopTimer()
				dst := filepath.Join(b.TempDir(), "fleet.db")
				copyFile(b, src, dst)
				store, err := bolt.Open(dst, nil)
				if err != nil {
					b.Fatal(err)
				}
				sched, _ := newDDMBench(store, clock.NewFake(benchD0.Add(time.Minute)), b, scheduler.WithOfflineGrace(tc.grace))
				b.StartTimer()
				st, err := sched.RunOnce(context.Background())
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				last = st
				store.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(last.Changed), "changed")
			b.ReportMetric(float64(last.Commands), "commands")
		})
	}
}

func copyFile(b *testing.B, src, dst string) {
	in, err := os.Open(src)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil {
		b.Fatal(err)
	}
}
