package scheduler_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/internal/webhook"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/legacy"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage"
	"github.com/sundial-mdm/sundial/storage/bolt"
)

// copyFixture copies the benchmark fleet to a fresh file and opens it.
func copyFixture(b *testing.B, src string) *bolt.Store {
	b.Helper()
	dst := filepath.Join(b.TempDir(), "fleet.db")
	in, err := os.Open(src)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		b.Fatal(err)
	}
	out.Close()
	store, err := bolt.Open(dst, nil)
	if err != nil {
		b.Fatal(err)
	}
	return store
}

// rolloutFixture opens a copy of the fleet as a rollout in progress: the
// three groups are a ring plan (the default group promoted by hand, broad
// started, late held by broad's gate), no pause, and a scheduler whose
// gate evaluations offer ring events to the once-ledger as the server
// wires it. No webhook endpoint: one subscribed to device.phase_changed
// would add an outbox write per phase change, with or without rings. One pass an hour after the fixture's
// own (nothing due) records the held ring and re-evaluates the fleet for
// it, as a leader that has been running would have done.
func rolloutFixture(b *testing.B, src string, opts ...scheduler.Option) (*bolt.Store, *scheduler.Scheduler, *clock.Fake) {
	b.Helper()
	ctx := context.Background()
	store := copyFixture(b, src)
	clk := clock.NewFake(benchSetup.Add(time.Hour))
	plan := scheduler.RingPlan{ID: "macos", Groups: []string{scheduler.DefaultGroupID, "broad", "late"},
		States: []scheduler.RingState{{Started: benchSetup, Promoted: &scheduler.Promotion{At: benchSetup, Actor: "bench"}}, {Started: benchSetup}, {}}}
	if err := store.PutRingPlan(ctx, plan, nil); err != nil {
		b.Fatal(err)
	}
	sched := scheduler.New(store, store, testCatalog(b), clk, append([]scheduler.Option{
		scheduler.WithEnforcer(softwareupdate.PathLegacy, legacy.New(legacy.Config{})),
		scheduler.WithGateObserver(webhook.GateObserver(store, slog.New(slog.DiscardHandler)))}, opts...)...)
	if _, err := sched.RunOnce(ctx); err != nil {
		b.Fatal(err)
	}
	if st := sched.RingStatuses()["macos"]; len(st) != 3 || !st[1].MayNotify || st[2].MayNotify {
		b.Fatalf("ring statuses %+v, want broad started and late held", st)
	}
	return store, sched, clk
}

// BenchmarkPassDue100kRollouts is BenchmarkPassDue100k with the rollout
// features of issue 23 on: a ring plan over the fleet's groups (the pass
// re-tallies the gates, RingGateInterval having passed, and offers their
// events to the once-ledger), the pause store read (no pause), and the
// offline grace at its default. Ring 0 enters enforce and ring 1 notify,
// as in BenchmarkPassDue100k; late is held.
func BenchmarkPassDue100kRollouts(b *testing.B) { benchRolloutPass(b, benchFixture(b)) }

// BenchmarkPassDue100kRolloutsCalendar is BenchmarkPassDue100kRollouts on
// the calendar fleet (BenchmarkPassDue100kCalendar): rings and business
// calendars in the same pass.
func BenchmarkPassDue100kRolloutsCalendar(b *testing.B) {
	benchRolloutPass(b, benchCalendarFixture(b), scheduler.WithZones(benchZone{}))
}

func benchRolloutPass(b *testing.B, src string, opts ...scheduler.Option) {
	measurePasses(b, func() (*bolt.Store, *scheduler.Scheduler) {
		store, sched, clk := rolloutFixture(b, src, opts...)
		clk.Set(benchNow)
		debug.FreeOSMemory()
		return store, sched
	})
}

// BenchmarkReadinessCheck100k is the leader's readiness check
// (webhook.CheckReadiness) over the 100k fleet at D0+1h: every Mac that is
// not compliant has its deadline within the 7-day window (about 70,000),
// and none has an agent, so all are at risk. "first" records them all and
// queues a device.at_risk each; "steady" is every later check, which
// finds no change.
func BenchmarkReadinessCheck100k(b *testing.B) {
	src := benchFixture(b)
	ctx := context.Background()
	forecaster := func(store *bolt.Store) *scheduler.Forecaster {
		clk := clock.NewFake(benchNow)
		return scheduler.NewForecaster(scheduler.NewReporter(store, store, testCatalog(b), clk), nil, store, scheduler.WithReadinessInputs(store))
	}
	prepare := func(b *testing.B) *bolt.Store {
		store := copyFixture(b, src)
		if err := store.PutWebhookEndpoint(ctx, storage.WebhookEndpoint{ID: "ops", URL: "https://hooks.example.com", Secret: []byte("sealed"),
			Created: benchSetup}); err != nil {
			b.Fatal(err)
		}
		return store
	}
	run := func(b *testing.B, store *bolt.Store, fc *scheduler.Forecaster) int {
		n, err := webhook.CheckReadiness(ctx, store, fc, benchNow)
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	b.Run("first", func(b *testing.B) {
		debug.FreeOSMemory()
		var n int
		var anon float64
		var cpu time.Duration
		for b.Loop() {
			b.StopTimer()
			store := prepare(b)
			fc := forecaster(store)
			rss := startRSS()
			b.StartTimer()
			start := cpuTime()
			n = run(b, store, fc)
			cpu += cpuTime() - start
			b.StopTimer()
			rss.Stop()
			anon = max(anon, rss.maxAnon)
			store.Close()
			b.StartTimer()
		}
		b.ReportMetric(float64(n), "announced")
		b.ReportMetric(anon/1e6, "peak-RSS-anon-MB")
		b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
	})
	b.Run("steady", func(b *testing.B) {
		store := prepare(b)
		defer store.Close()
		fc := forecaster(store)
		run(b, store, fc)
		debug.FreeOSMemory()
		rss := startRSS()
		var n int
		start := cpuTime()
		for b.Loop() {
			n = run(b, store, fc)
		}
		cpu := cpuTime() - start
		rss.Stop()
		b.ReportMetric(float64(n), "announced")
		b.ReportMetric(rss.maxAnon/1e6, "peak-RSS-anon-MB")
		b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
	})
}
