package procs

import (
	"context"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

const mb = 1 << 20

func TestGCPercent(t *testing.T) {
	for _, c := range []struct {
		live    uint64
		ceiling int
		want    int
	}{
		{0, 200, 200},           // before the first collection
		{4 * mb, 200, 200},      // an idle server
		{12 * mb, 200, 200},     // the most the ceiling allows
		{16 * mb, 200, 150},     // 24 MB of growth
		{24 * mb, 200, 100},     // Go's default from here on
		{100 * mb, 200, 100},    // never below it
		{4 * mb, 400, 400},      // another ceiling
		{8 * mb, 400, 300},      //
		{4 * mb, 100, 100},      // a ceiling of 100 or less is fixed
		{100 * mb, 80, 80},      //
		{1 << 62, 200, 100},     // no overflow
		{1, 1 << 30, 1 << 30},   //
		{3 * mb, 1 << 30, 800},  //
		{30 * mb, 1 << 30, 100}, //
	} {
		if got := GCPercent(c.live, DefaultGCHeadroom, c.ceiling); got != c.want {
			t.Errorf("GCPercent(%d MB, ceiling %d) = %d, want %d", c.live/mb, c.ceiling, got, c.want)
		}
	}
	// Whatever the live heap, the growth allowed between collections is at
	// least Go's default (the live heap again) and at most the headroom
	// beyond it.
	for live := uint64(mb / 2); live < 200*mb; live += mb / 2 {
		grow := live * uint64(GCPercent(live, DefaultGCHeadroom, 200)) / 100
		if grow < live || grow > max(live, DefaultGCHeadroom) {
			t.Fatalf("live %d KB: the heap may grow %d KB", live>>10, grow>>10)
		}
	}
}

type fakeGC struct {
	mu   sync.Mutex
	live uint64
	sets []int
}

func (f *fakeGC) LiveHeap() uint64 { f.mu.Lock(); defer f.mu.Unlock(); return f.live }
func (f *fakeGC) SetGCPercent(p int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sets = append(f.sets, p)
}
func (f *fakeGC) setLive(n uint64) { f.mu.Lock(); defer f.mu.Unlock(); f.live = n }
func (f *fakeGC) calls() []int     { f.mu.Lock(); defer f.mu.Unlock(); return slices.Clone(f.sets) }

// TestGCTunerRun: GOGC is set at once, follows the live heap within an
// interval, and is set only when it changes.
func TestGCTunerRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := &fakeGC{live: 4 * mb}
		g := NewGCTuner(rt, 200, 0, 0, nil)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- g.Run(ctx) }()
		synctest.Wait()
		if got := rt.calls(); !slices.Equal(got, []int{200}) {
			t.Fatalf("at start SetGCPercent calls %v, want [200]", got)
		}
		rt.setLive(16 * mb)
		time.Sleep(DefaultGCInterval)
		synctest.Wait()
		time.Sleep(time.Minute) // unchanged: no more calls
		rt.setLive(64 * mb)
		time.Sleep(DefaultGCInterval)
		synctest.Wait()
		rt.setLive(5 * mb)
		time.Sleep(DefaultGCInterval)
		synctest.Wait()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got, want := rt.calls(), []int{200, 150, 100, 200}; !slices.Equal(got, want) {
			t.Fatalf("SetGCPercent calls %v, want %v", got, want)
		}
	})
}

// TestProcessGC checks the real binding: the live heap counts what a
// collection keeps, and SetGCPercent sets GOGC.
func TestProcessGC(t *testing.T) {
	keep := make([][]byte, 64)
	for i := range keep {
		keep[i] = make([]byte, 64<<10)
	}
	runtime.GC()
	if live := (Process{}).LiveHeap(); live < 4*mb || live > 1<<40 {
		t.Errorf("LiveHeap = %d bytes with 4 MB kept", live)
	}
	runtime.KeepAlive(keep)
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	(Process{}).SetGCPercent(173)
	if got := debug.SetGCPercent(100); got != 173 {
		t.Errorf("GOGC = %d after SetGCPercent(173)", got)
	}
}
