package procs

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeRuntime burns CPU at a load the test sets (in CPUs) and records what
// the governor sets.
type fakeRuntime struct {
	mu    sync.Mutex
	def   int // the runtime's default GOMAXPROCS
	procs int
	load  float64
	cpu   time.Duration
	last  time.Time
	sets  []int
}

func newFake(def int) *fakeRuntime {
	return &fakeRuntime{def: def, procs: def, last: time.Now()}
}

func (f *fakeRuntime) CPUTime() (time.Duration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	f.cpu += time.Duration(f.load * float64(now.Sub(f.last)))
	f.last = now
	return f.cpu, nil
}

func (f *fakeRuntime) Procs() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.procs
}

func (f *fakeRuntime) SetProcs(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sets = append(f.sets, n)
	if n == 0 {
		n = f.def
	}
	f.procs = n
}

func (f *fakeRuntime) setLoad(cpus float64) {
	f.CPUTime() // account the time so far at the old load
	f.mu.Lock()
	f.load = cpus
	f.mu.Unlock()
}

func (f *fakeRuntime) setCalls() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sets)
}

type step struct {
	name string
	cpus float64 // CPUs used over the interval
	want int     // GOMAXPROCS after it
}

func TestObserve(t *testing.T) {
	rt := newFake(4)
	g := New(rt, 0, nil)
	steps := []step{
		{"busy stays at the default", 3.0, 4},
		{"between the thresholds stays", 0.85, 4},
	}
	for range LowerAfter - 1 {
		steps = append(steps, step{"light, not yet long enough", 0.2, 4})
	}
	steps = append(steps,
		step{"light for LowerAfter intervals lowers to one", 0.2, 1},
		step{"one P, between the thresholds stays at one", 0.85, 1},
		step{"one P, idle stays", 0, 1},
		step{"one P, more than RaiseAbove raises at once", 0.95, 4},
		step{"the count of light intervals starts again", 0.1, 4},
	)
	iv := DefaultInterval
	for i, s := range steps {
		used := time.Duration(s.cpus * float64(iv))
		if got := g.Observe(used, iv); got != s.want {
			t.Fatalf("step %d (%s, %.2f CPUs): GOMAXPROCS %d, want %d", i, s.name, s.cpus, got, s.want)
		}
		if rt.Procs() != s.want {
			t.Fatalf("step %d (%s): runtime at %d, governor says %d", i, s.name, rt.Procs(), s.want)
		}
	}
	if got, want := rt.setCalls(), []int{1, 0}; !slices.Equal(got, want) {
		t.Fatalf("SetProcs calls %v, want %v (one lowering, one return to the default)", got, want)
	}
}

func TestLightIntervalsMustBeConsecutive(t *testing.T) {
	rt := newFake(2)
	g := New(rt, time.Second, nil)
	for range 10 {
		for range LowerAfter - 1 {
			g.Observe(100*time.Millisecond, time.Second)
		}
		g.Observe(850*time.Millisecond, time.Second) // one interval between the thresholds
	}
	if g.Procs() != 2 || len(rt.setCalls()) != 0 {
		t.Fatalf("GOMAXPROCS %d after interrupted light runs, calls %v; want 2 and none", g.Procs(), rt.setCalls())
	}
}

func TestOneCPULeftAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := newFake(1)
		g := New(rt, 0, nil)
		if err := g.Run(t.Context()); err != nil {
			t.Fatal(err)
		}
		if g.Observe(0, time.Second) != 1 || len(rt.setCalls()) != 0 {
			t.Fatalf("a one-CPU runtime was changed: %v", rt.setCalls())
		}
	})
}

// TestRunFollowsLoad drives a day's pattern in fake time: quiet, a burst of
// enrolments, quiet again, then shutdown.
func TestRunFollowsLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := newFake(2)
		g := New(rt, 0, nil)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- g.Run(ctx) }()

		rt.setLoad(0.3)
		time.Sleep(time.Duration(LowerAfter)*DefaultInterval + DefaultInterval/2)
		synctest.Wait()
		if rt.Procs() != 1 {
			t.Fatalf("after %d light intervals GOMAXPROCS %d, want 1", LowerAfter, rt.Procs())
		}

		rt.setLoad(1.6) // a burst: the single P is saturated
		time.Sleep(DefaultInterval)
		synctest.Wait()
		if rt.Procs() != 2 {
			t.Fatalf("one interval into a burst GOMAXPROCS %d, want 2", rt.Procs())
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if rt.Procs() != 2 {
			t.Fatalf("during the burst GOMAXPROCS %d, want 2", rt.Procs())
		}

		rt.setLoad(0.05)
		time.Sleep(time.Minute)
		synctest.Wait()
		if rt.Procs() != 1 {
			t.Fatalf("a minute after the burst GOMAXPROCS %d, want 1", rt.Procs())
		}

		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if rt.Procs() != 2 {
			t.Fatalf("after Run returned GOMAXPROCS %d, want the default 2", rt.Procs())
		}
		if got, want := rt.setCalls(), []int{1, 0, 1, 0}; !slices.Equal(got, want) {
			t.Fatalf("SetProcs calls %v, want %v", got, want)
		}
	})
}

// TestProcess checks the real binding: CPU time grows with work, and the
// default GOMAXPROCS comes back.
func TestProcess(t *testing.T) {
	var p Process
	before, err := p.CPUTime()
	if err != nil {
		t.Skip("no process CPU time here:", err)
	}
	x := 0
	for deadline := time.Now().Add(30 * time.Millisecond); time.Now().Before(deadline); {
		x++
	}
	after, err := p.CPUTime()
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Fatalf("CPU time did not grow over a busy loop (%d iterations): %v then %v", x, before, after)
	}
	def := runtime.GOMAXPROCS(0)
	p.SetProcs(1)
	if p.Procs() != 1 {
		t.Fatalf("SetProcs(1): GOMAXPROCS %d", p.Procs())
	}
	p.SetProcs(0)
	if p.Procs() != def {
		t.Fatalf("SetProcs(0): GOMAXPROCS %d, want the default %d", p.Procs(), def)
	}
}
