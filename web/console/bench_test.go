package console

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/sundial-mdm/sundial/internal/clock"
	"github.com/sundial-mdm/sundial/internal/webhook"
	"github.com/sundial-mdm/sundial/mdm"
	"github.com/sundial-mdm/sundial/softwareupdate"
	"github.com/sundial-mdm/sundial/softwareupdate/catalog"
	"github.com/sundial-mdm/sundial/softwareupdate/legacy"
	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
	"github.com/sundial-mdm/sundial/storage/bolt"
)

// The benchmark fleet: SUNDIAL_CONSOLE_BENCH_DEVICES Macs (default
// 100,000) in a bbolt file, in three groups with ring offsets 0, 3 and 7
// days under one manual policy, evaluated by the scheduler; 60% must update.
var (
	benchSetup = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	benchNow   = time.Date(2026, 12, 1, 18, 0, 0, 0, time.UTC)
)

type benchFleet struct {
	dir   string
	store *bolt.Store
	c     *Console
	h     http.Handler
	tok   string
	n     int
}

var (
	fleetOnce sync.Once
	fleet     *benchFleet
	fleetErr  error
)

func benchN() int {
	if n, err := strconv.Atoi(os.Getenv("SUNDIAL_CONSOLE_BENCH_DEVICES")); err == nil && n > 0 {
		return n
	}
	return 100_000
}

func benchEnroll(ctx context.Context, store *bolt.Store, i int, now time.Time) error {
	id := fmt.Sprintf("BENCH-%08d", i)
	osv := "14.6"
	if i%10 >= 6 {
		osv = "14.6.1"
	}
	auth := &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: id}, MessageType: mdm.Authenticate, Topic: "t", OSVersion: osv, ProductName: "Mac14,2"}
	if err := store.Authenticate(ctx, id, auth, "cert-"+id, now); err != nil {
		return err
	}
	tok := &mdm.CheckinMessage{Enrollment: mdm.Enrollment{UDID: id}, MessageType: mdm.TokenUpdate, Topic: "t", Token: []byte("token-" + id), PushMagic: "magic-" + id}
	if _, err := store.TokenUpdate(ctx, id, tok, nil, now); err != nil {
		return err
	}
	inv := &mdm.Inventory{OSVersion: osv, BuildVersion: "B", ProductName: "Mac14,2", SoftwareUpdateDeviceID: "J413AP", IsSupervised: true, IsAppleSilicon: true,
		SerialNumber: fmt.Sprintf("C02%08d", i), DeviceName: "Mac " + id, ModelName: "MacBook Air"}
	return store.UpdateInventory(ctx, id, inv, now)
}

type allAdmin struct{}

func (allAdmin) ByHash(context.Context, string) (Principal, error) {
	return Principal{Name: "bench", Role: RoleAdmin, KeyHash: "x"}, nil
}

func buildFleet(dir string, n int) (*benchFleet, error) {
	ctx := context.Background()
	store, err := bolt.Open(filepath.Join(dir, "fleet.db"), &bolt.Options{NoSync: true})
	if err != nil {
		return nil, err
	}
	const workers = 200
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				if err := benchEnroll(ctx, store, i, benchSetup); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	clk := clock.NewFake(benchSetup)
	cat := catalog.Default()
	sched := scheduler.New(store, store, cat, clk, scheduler.WithEnforcer(softwareupdate.PathLegacy, legacy.New(legacy.Config{})))
	mgr := scheduler.NewManager(store, cat, clk, sched)
	for ring, g := range []string{scheduler.DefaultGroupID, "broad", "late"} {
		if g != scheduler.DefaultGroupID {
			if _, err := mgr.CreateGroup(ctx, "bench", g, g); err != nil {
				return nil, err
			}
		}
		if _, err := mgr.SetPolicy(ctx, "bench", g, softwareupdate.Policy{Mode: softwareupdate.ModeManual, MinimumVersion: "14.6.1",
			Date: "2026-12-01", TimeOfDay: "12:00", TimeZone: "UTC", RingOffsetDays: []int{0, 3, 7}[ring]}); err != nil {
			return nil, err
		}
		if ring == 0 {
			continue
		}
		var ids []string
		for i := ring; i < n; i += 3 {
			ids = append(ids, fmt.Sprintf("BENCH-%08d", i))
		}
		if err := mgr.AssignDevices(ctx, "bench", g, ids); err != nil {
			return nil, err
		}
	}
	if _, err := sched.RunOnce(ctx); err != nil {
		return nil, err
	}
	clk.Set(benchNow)
	if _, err := sched.RunOnce(ctx); err != nil {
		return nil, err
	}
	// The rollout section's sources: a ring plan over the three groups (not
	// evaluated: the scheduler does not run again) and the leader's
	// readiness marks, every Mac without an agent being at risk.
	if err := store.PutRingPlan(ctx, scheduler.RingPlan{ID: "macos", Groups: []string{scheduler.DefaultGroupID, "broad", "late"}}, nil); err != nil {
		return nil, err
	}
	reporter := scheduler.NewReporter(store, store, cat, clk)
	if _, err := webhook.CheckReadiness(ctx, store, scheduler.NewForecaster(reporter, nil, store, scheduler.WithReadinessInputs(store)), clk.Now()); err != nil {
		return nil, err
	}
	c := New(Config{Auth: allAdmin{}, Reports: reporter,
		Devices: store, Manager: mgr, Catalog: cat, Clock: clk,
		Forecasts: store, Rollouts: mgr, Gates: sched})
	r := mux.NewRouter()
	c.Register(r)
	tok, _ := c.sessions.create(Principal{Name: "bench", Role: RoleAdmin, KeyHash: "x"}, time.UTC, benchNow)
	return &benchFleet{dir: dir, store: store, c: c, h: r, tok: tok, n: n}, nil
}

var _ Devices = (*bolt.Store)(nil)

func getFleet(b *testing.B) *benchFleet {
	fleetOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sundial-console-bench-")
		if err != nil {
			fleetErr = err
			return
		}
		start := time.Now()
		if fleet, fleetErr = buildFleet(dir, benchN()); fleetErr != nil {
			os.RemoveAll(dir)
		}
		b.Logf("fleet of %d Macs built in %v", benchN(), time.Since(start))
	})
	if fleetErr != nil {
		b.Fatal(fleetErr)
	}
	return fleet
}

// cpuTime is the process's user and system CPU time. The machine the
// benchmarks run on is shared, so CPU per operation is reported beside
// wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fleet != nil {
		fleet.store.Close()
		os.RemoveAll(fleet.dir)
	}
	os.Exit(code)
}

// loop runs path b.N times and reports CPU milliseconds per request. One
// request before the timer builds the fleet snapshot (measured on its own
// by BenchmarkSnapshotBuild100k) and any sort index the path needs.
func (f *benchFleet) loop(b *testing.B, path string) {
	f.get(b, path)
	b.ResetTimer()
	start := cpuTime()
	n := 0
	for b.Loop() {
		f.get(b, path)
		n++
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(time.Millisecond)/float64(n), "cpu-ms/op")
}

func (f *benchFleet) get(b *testing.B, path string) {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: f.tok})
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		b.Fatalf("GET %s: %d %s", path, w.Code, w.Body.String())
	}
}

// BenchmarkOverview100k renders the overview page of the whole fleet.
func BenchmarkOverview100k(b *testing.B) {
	f := getFleet(b)
	f.loop(b, "/ui/")
	b.ReportMetric(float64(f.n), "devices")
}

// BenchmarkSnapshotBuild100k reads the fleet into a snapshot (the
// compliance report with rows, groups and policies), as a refresh does in
// the background.
func BenchmarkSnapshotBuild100k(b *testing.B) {
	f := getFleet(b)
	start := cpuTime()
	n := 0
	for b.Loop() {
		if _, err := f.c.buildSnapshot(context.Background()); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(time.Millisecond)/float64(n), "cpu-ms/op")
}

// BenchmarkDeviceListSorted100k renders the first page sorted by deadline,
// latest first.
func BenchmarkDeviceListSorted100k(b *testing.B) {
	f := getFleet(b)
	f.loop(b, "/ui/devices?sort=deadline&desc=true")
}

// BenchmarkDeviceList100k renders the first page of the device list.
func BenchmarkDeviceList100k(b *testing.B) {
	f := getFleet(b)
	f.loop(b, "/ui/devices")
}

// BenchmarkDeviceListDeep100k renders a page from the middle of the list.
func BenchmarkDeviceListDeep100k(b *testing.B) {
	f := getFleet(b)
	f.loop(b, fmt.Sprintf("/ui/devices?page=%d", f.n/devicePageSize/2))
}

// BenchmarkDeviceListFiltered100k renders the Macs of one group and phase.
func BenchmarkDeviceListFiltered100k(b *testing.B) {
	f := getFleet(b)
	f.loop(b, "/ui/devices?group=late&phase=notify")
}

// BenchmarkDeviceSearch100k searches the fleet by serial number.
func BenchmarkDeviceSearch100k(b *testing.B) {
	f := getFleet(b)
	f.loop(b, "/ui/devices?search="+fmt.Sprintf("C02%08d", f.n-7))
}

// BenchmarkReadinessPage100k renders the list of Macs at risk (every Mac
// of the window lacks an agent: tens of thousands of marks, the first 500
// listed).
func BenchmarkReadinessPage100k(b *testing.B) {
	f := getFleet(b)
	f.loop(b, "/ui/readiness")
}

// BenchmarkForecastSummary100k is what the readiness forecast adds to a
// snapshot rebuild: "marks" re-reads the leader's marks (at most every
// forecastRefresh) and summarises them, "summary" only summarises (every
// rebuild). Every Mac of the window is marked (no agents): the worst case.
func BenchmarkForecastSummary100k(b *testing.B) {
	f := getFleet(b)
	ctx := context.Background()
	snap, err := f.c.snaps.get(ctx)
	if err != nil {
		b.Fatal(err)
	}
	marks, err := f.store.ForecastMarks(ctx)
	if err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, read bool) {
		start := cpuTime()
		n := 0
		for b.Loop() {
			ms := marks
			if read {
				if ms, err = f.store.ForecastMarks(ctx); err != nil {
					b.Fatal(err)
				}
			}
			BuildForecast(snap.Report, ms, readinessRows)
			n++
		}
		b.ReportMetric(float64(cpuTime()-start)/float64(time.Millisecond)/float64(n), "cpu-ms/op")
		b.ReportMetric(float64(len(marks)), "marks")
	}
	b.Run("marks", func(b *testing.B) { run(b, true) })
	b.Run("summary", func(b *testing.B) { run(b, false) })
}
