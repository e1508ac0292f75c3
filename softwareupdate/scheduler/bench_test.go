package scheduler_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/legacy"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage/bolt"
)

// The benchmark fleet: 100,000 Macs in three rings (deadlines D0, D0+3d,
// D0+7d) with a mix of OS versions: 40% on 15.1 (must reach 15.2), 20% on
// 14.6 (held to 14.6.1), 30% already on 15.2, 10% on hardware the releases
// do not support. It is built once per run in a subprocess (so that its
// memory does not count toward the measured peak RSS) by running the
// scheduler itself at benchSetup: every non-compliant Mac is pending and has
// its scan queued.
const benchDevices = 100_000

var (
	benchD0    = time.Date(2026, 3, 20, 17, 0, 0, 0, time.UTC)
	benchSetup = time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	// benchNow: ring 0 is in enforce, ring 1 in notify, ring 2 still pending.
	benchNow = benchD0.Add(time.Hour)

	benchOnce sync.Once
	benchDir  string
	benchPath string
	benchErr  error

	// The calendar fixture (BenchmarkPassDue100kCalendar), built on demand.
	benchCalOnce sync.Once
	benchCalDir  string
	benchCalPath string
	benchCalErr  error
)

const (
	fixtureEnv = "SUNDIAL_SCHEDULER_BENCH_FIXTURE"
	// calendarEnv asks TestBuildBenchFixture for the fleet whose policies
	// have a business calendar (benchCalendar).
	calendarEnv = "SUNDIAL_SCHEDULER_BENCH_CALENDAR"
)

// benchCalendar is the business calendar of the calendar fixture's
// policies: Monday to Friday 08:00-18:00 with a year of holidays. Ring 1's
// deadline (Monday 2026-03-23 17:00) is a holiday and moves to Tuesday
// 08:00, so a third of the fleet carries a moved deadline; rings 0 and 2
// (Fridays 17:00) stay, so the pass at benchNow changes the same Macs as
// the plain fixture's: ring 0 enters enforce, ring 1 notify.
var benchCalendar = &softwareupdate.Calendar{WorkingDays: "mon-fri", WorkingHours: "08:00-18:00", Holidays: []softwareupdate.Holiday{
	{Date: "01-01", Name: "New Year's Day"}, {Date: "2026-03-23", Name: "Bench holiday"}, {Date: "2026-04-03", Name: "Good Friday"},
	{Date: "2026-04-06", Name: "Easter Monday"}, {Date: "05-01", Name: "Labour Day"}, {Date: "2026-05-14", Name: "Ascension Day"},
	{Date: "2026-05-25", Name: "Whit Monday"}, {Date: "10-03", Name: "Unity Day"}, {Date: "12-24", Name: "Christmas Eve"},
	{Date: "12-25", Name: "Christmas Day"}, {Date: "12-26", Name: "Boxing Day"}, {Date: "12-31", Name: "New Year's Eve"},
}}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	if benchCalDir != "" {
		os.RemoveAll(benchCalDir)
	}
	os.Exit(code)
}

func benchFixture(b *testing.B) string {
	benchOnce.Do(func() {
		if p := os.Getenv("SUNDIAL_SCHEDULER_BENCH_DB"); p != "" {
			benchPath = p // a fixture built earlier (for profiling)
			return
		}
		if benchDir, benchErr = os.MkdirTemp("", "sundial-scheduler-bench-"); benchErr != nil {
			return
		}
		benchPath = filepath.Join(benchDir, "fleet.db")
		cmd := exec.Command(os.Args[0], "-test.run=^TestBuildBenchFixture$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), fixtureEnv+"="+benchPath)
		out, err := cmd.CombinedOutput()
		if err != nil {
			benchErr = fmt.Errorf("build fixture: %v\n%s", err, out)
		}
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchPath
}

// benchCalendarFixture builds the fleet with calendars, as benchFixture
// does the plain one.
func benchCalendarFixture(b *testing.B) string {
	benchCalOnce.Do(func() {
		if benchCalDir, benchCalErr = os.MkdirTemp("", "sundial-scheduler-bench-cal-"); benchCalErr != nil {
			return
		}
		benchCalPath = filepath.Join(benchCalDir, "fleet.db")
		cmd := exec.Command(os.Args[0], "-test.run=^TestBuildBenchFixture$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), fixtureEnv+"="+benchCalPath, calendarEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			benchCalErr = fmt.Errorf("build calendar fixture: %v\n%s", err, out)
		}
	})
	if benchCalErr != nil {
		b.Fatal(benchCalErr)
	}
	return benchCalPath
}

// TestBuildBenchFixture builds the benchmark fleet when asked to by
// benchFixture; otherwise it is skipped.
func TestBuildBenchFixture(t *testing.T) {
	path := os.Getenv(fixtureEnv)
	if path == "" {
		t.Skip("only run by the benchmarks")
	}
	ctx := context.Background()
	start := time.Now()
	store, err := bolt.Open(path, &bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	clk := clock.NewFake(benchSetup)
	// Enrollment writes go through bbolt's Batch: enough concurrent writers
	// fill a batch instead of waiting out its delay.
	const workers = 500
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < benchDevices; i += workers {
				if err := benchEnroll(ctx, store, i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	cat := testCatalog(t)
	opts := []scheduler.Option{scheduler.WithEnforcer(softwareupdate.PathLegacy, legacy.New(legacy.Config{}))}
	if os.Getenv(calendarEnv) != "" {
		opts = append(opts, scheduler.WithZones(benchZone{})) // kept in each state's facts
	}
	sched := scheduler.New(store, store, cat, clk, opts...)
	mgr := scheduler.NewManager(store, cat, clk, sched)
	for ring, g := range []string{scheduler.DefaultGroupID, "broad", "late"} {
		if g != scheduler.DefaultGroupID {
			if _, err := mgr.CreateGroup(ctx, "bench", g, g); err != nil {
				t.Fatal(err)
			}
		}
		pol := softwareupdate.Policy{Mode: softwareupdate.ModeManual, MinimumVersion: "15.2",
			Date: benchD0.Format(time.DateOnly), TimeOfDay: "17:00", TimeZone: "UTC", RingOffsetDays: []int{0, 3, 7}[ring]}
		if os.Getenv(calendarEnv) != "" {
			pol.Calendar = benchCalendar
		}
		if _, err := mgr.SetPolicy(ctx, "bench", g, pol); err != nil {
			t.Fatal(err)
		}
		if ring == 0 {
			continue
		}
		var ids []string
		for i := ring; i < benchDevices; i += 3 {
			ids = append(ids, benchID(i))
		}
		if err := mgr.AssignDevices(ctx, "bench", g, ids); err != nil {
			t.Fatal(err)
		}
	}
	st, err := sched.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fixture: %d devices, setup pass %+v, built in %v", benchDevices, st, time.Since(start))
}

func benchID(i int) string { return fmt.Sprintf("BENCH-%08d", i) }

func benchEnroll(ctx context.Context, store *bolt.Store, i int) error {
	id := benchID(i)
	now := benchSetup.Add(-24 * time.Hour)
	osv, board := "15.1", "J413AP"
	switch i % 10 {
	case 4, 5:
		osv = "14.6"
	case 6, 7, 8:
		osv = "15.2"
	case 9:
		board = "J152FAP"
	}
	auth := &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: id}, MessageType: mdm.Authenticate, Topic: "t", OSVersion: osv, ProductName: "Mac14,2"}
	if err := store.Authenticate(ctx, id, auth, "cert-"+id, now); err != nil {
		return err
	}
	tok := &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: id}, MessageType: mdm.TokenUpdate, Topic: "t", Token: []byte("token-" + id), PushMagic: "magic-" + id}
	if _, err := store.TokenUpdate(ctx, id, tok, nil, now); err != nil {
		return err
	}
	inv := &mdm.Inventory{OSVersion: osv, BuildVersion: "B", ProductName: "Mac14,2", SoftwareUpdateDeviceID: board, IsSupervised: true, IsAppleSilicon: true,
		SerialNumber: "C02" + id[6:], DeviceName: "Mac " + id, ModelName: "MacBook Air", AvailableDeviceCapacity: 120, DeviceCapacity: 494}
	return store.UpdateInventory(ctx, id, inv, now)
}

// openCopy copies the fixture to a fresh file and opens it with a scheduler
// at benchNow.
// extra, when not nil, gives more scheduler options for the opened store.
func openCopy(b *testing.B, src string, now time.Time, extra ...func(*bolt.Store) scheduler.Option) (*bolt.Store, *scheduler.Scheduler) {
	b.Helper()
	store := copyFixture(b, src)
	batch, _ := strconv.Atoi(os.Getenv("SUNDIAL_SCHEDULER_BENCH_BATCH"))
	opts := []scheduler.Option{scheduler.WithEnforcer(softwareupdate.PathLegacy, legacy.New(legacy.Config{})), scheduler.WithBatchSize(batch)}
	for _, x := range extra {
		opts = append(opts, x(store))
	}
	sched := scheduler.New(store, store, testCatalog(b), clock.NewFake(now), opts...)
	return store, sched
}

// rssSampler samples the process's resident memory (/proc/self/status)
// while a pass runs: anonymous memory (the Go heap and stacks) and
// file-backed memory (bbolt's read-only mmap of the database file, which
// the kernel can drop at will), keeping the maxima.
type rssSampler struct {
	stop             chan struct{}
	done             chan struct{}
	maxAnon, maxFile float64
}

func startRSS() *rssSampler {
	r := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			anon, file := readRSS()
			r.maxAnon, r.maxFile = max(r.maxAnon, anon), max(r.maxFile, file)
			select {
			case <-r.stop:
				return
			case <-t.C:
			}
		}
	}()
	return r
}

func (r *rssSampler) Stop() { close(r.stop); <-r.done }

func readRSS() (anon, file float64) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	kb := func(s string) float64 {
		v, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), " kB"), 64)
		return v * 1024
	}
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "RssAnon:"); ok {
			anon = kb(rest)
		} else if rest, ok := strings.CutPrefix(sc.Text(), "RssFile:"); ok {
			file = kb(rest)
		}
	}
	return anon, file
}

func benchPass(b *testing.B, sweep bool, now time.Time) { benchPassOn(b, benchFixture(b), sweep, now) }

func benchPassOn(b *testing.B, src string, sweep bool, now time.Time, extra ...func(*bolt.Store) scheduler.Option) {
	measurePasses(b, func() (*bolt.Store, *scheduler.Scheduler) {
		store, sched := openCopy(b, src, now, extra...)
		if sweep {
			sched.CatalogChanged()
		}
		return store, sched
	})
}

// measurePasses times one RunOnce per iteration on the store and scheduler
// open returns (outside the timer), and reports the last pass's counts,
// its allocations and the peak resident memory.
func measurePasses(b *testing.B, open func() (*bolt.Store, *scheduler.Scheduler)) {
	// Return the heap of an earlier benchmark in this process to the OS,
	// so that its resident pages do not count in this one's peak.
	debug.FreeOSMemory()
	var last scheduler.Stats
	var alloc uint64
	var anon, file float64
	for b.Loop() {
		b.StopTimer()
		store, sched := open()
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		rss := startRSS()
		b.StartTimer()
		st, err := sched.RunOnce(context.Background())
		b.StopTimer()
		rss.Stop()
		if err != nil {
			b.Fatal(err)
		}
		runtime.ReadMemStats(&ms1)
		alloc = ms1.TotalAlloc - ms0.TotalAlloc
		anon, file = max(anon, rss.maxAnon), max(file, rss.maxFile)
		last = st
		store.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(last.Evaluated), "devices")
	b.ReportMetric(float64(last.Changed), "changed")
	b.ReportMetric(float64(last.Commands), "commands")
	b.ReportMetric(float64(alloc)/1e6, "alloc-MB/pass")
	b.ReportMetric(anon/1e6, "peak-RSS-anon-MB")
	b.ReportMetric(file/1e6, "peak-RSS-file-MB")
}

// BenchmarkPassDue100k: one pass at D0+1h over the 100k fleet: ring 0
// enters enforce (forced installs), ring 1 enters notify (downloads).
func BenchmarkPassDue100k(b *testing.B) { benchPass(b, false, benchNow) }

// BenchmarkPassDue100kCalendar: BenchmarkPassDue100k with a business
// calendar on every policy (benchCalendar); every Mac's agent reported its
// zone (benchZone), which the fixture's pass kept in the Mac's facts, so
// the calendar costs one cached zone lookup and one working-time check per
// Mac.
func BenchmarkPassDue100kCalendar(b *testing.B) {
	benchPassOn(b, benchCalendarFixture(b), false, benchNow, func(*bolt.Store) scheduler.Option {
		return scheduler.WithZones(benchZone{})
	})
}

// benchZone is what every agent of the calendar fleet reported: London, on
// UTC until 29 March, so every deadline is where it is in UTC. (The
// server reads the agent store; a pass reads only the zone kept in each
// state's facts, so the fixture needs no agent records.)
type benchZone struct{}

func (benchZone) DeviceZone(context.Context, string) string { return "Europe/London" }

// BenchmarkSweep100k: one pass re-evaluating all 100k devices from their
// device records (what a catalog or policy change triggers) at D0+1h.
func BenchmarkSweep100k(b *testing.B) { benchPass(b, true, benchNow) }

// BenchmarkSweepSteady100k: the same full re-evaluation on a quiet day
// (an hour after the fixture's own pass): every device is read and
// evaluated, none changes.
func BenchmarkSweepSteady100k(b *testing.B) { benchPass(b, true, benchSetup.Add(time.Hour)) }

// BenchmarkPassNothingDue100k: the cost of a pass over the 100k fleet when
// nothing is due.
func BenchmarkPassNothingDue100k(b *testing.B) {
	src := benchFixture(b)
	store, sched := openCopy(b, src, benchSetup.Add(time.Hour))
	defer store.Close()
	ctx := context.Background()
	// The fixture's own pass already ran at benchSetup: nothing is due
	// until ring 0's notify window opens.
	for b.Loop() {
		st, err := sched.RunOnce(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if st.Evaluated != 0 {
			b.Fatalf("pass evaluated %d devices, want 0", st.Evaluated)
		}
	}
}
