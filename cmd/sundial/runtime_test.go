package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// TestServerLeavesRuntimeAlone starts a real server process with the
// deprecated tuning flags: it starts, warns about each, and runs with the
// Go runtime's own GOMAXPROCS and GOGC, the same PID and no GODEBUG of its
// own.
func TestServerLeavesRuntimeAlone(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	for _, v := range []string{"GOMAXPROCS", "GOGC", "GODEBUG"} {
		if os.Getenv(v) != "" {
			t.Skipf("%s is set for the test, and so for its server processes", v)
		}
	}
	var stderr lockedBuffer
	p := startProcOut(t, t.TempDir(), freeAddr(t), &stderr, nil,
		"--adaptive-procs=true", "--gc-percent=200", "--bolt-mapped-mb=100")
	if n := metric(t, p, "go_sched_gomaxprocs_threads"); n != runtime.GOMAXPROCS(0) {
		t.Errorf("server runs with GOMAXPROCS %d, want the runtime's %d", n, runtime.GOMAXPROCS(0))
	}
	if n := metric(t, p, "go_gc_gogc_percent"); n != 100 {
		t.Errorf("server runs with GOGC %d, want the runtime's 100", n)
	}
	for _, flag := range []string{"adaptive-procs", "gc-percent", "bolt-mapped-mb"} {
		if !strings.Contains(stderr.String(), "--"+flag+" is deprecated") {
			t.Errorf("no deprecation warning for --%s in:\n%s", flag, stderr.String())
		}
	}
	if runtime.GOOS != "linux" {
		return
	}
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(env, []byte("GODEBUG=")) {
		t.Errorf("server process runs with a GODEBUG setting: %q", env)
	}
}

// TestServerDeprecatedFlagFromEnv checks that a deprecated flag set through
// its SUNDIAL_* variable is named in a warning too.
func TestServerDeprecatedFlagFromEnv(t *testing.T) {
	cfg := &Config{}
	cmd := &cobra.Command{Use: "server"}
	cfg.flags(cmd.Flags())
	env := map[string]string{"SUNDIAL_GC_PERCENT": "150"}
	have := cfg.deprecations(cmd, func(k string) string { return env[k] })
	if len(have) != 1 || !strings.HasPrefix(have[0], "--gc-percent is deprecated") {
		t.Errorf("deprecations = %q, want one for --gc-percent", have)
	}
	if have := cfg.deprecations(cmd, func(string) string { return "" }); len(have) != 0 {
		t.Errorf("deprecations without the flag = %q", have)
	}
}

// TestServerIdleCPU starts a real server process, lets it settle, and reads
// its CPU time from /proc over a few seconds with no traffic: it must stay
// under 0.5 ms per second, allowing for one scheduler tick of the kernel's
// accounting.
func TestServerIdleCPU(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server process and waits")
	}
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	// The default flush interval, as in production.
	p := startProcWith(t, t.TempDir(), freeAddr(t), nil, "--flush-interval", "5s")
	// Start-up work (the first scheduler pass, the catalog, the leader's
	// first evidence and readiness checks) ends: wait for a second without
	// a tick of CPU, for at most 30 s on a busy host.
	const tick = 10 * time.Millisecond // USER_HZ 100: the accounting's unit
	cpu0 := procCPU(t, p.cmd.Process.Pid)
	for settle := 0; settle < 30; settle++ {
		time.Sleep(time.Second)
		cpu := procCPU(t, p.cmd.Process.Pid)
		if cpu-cpu0 < tick && settle > 0 {
			break
		}
		cpu0 = cpu
	}
	const window = 6 * time.Second
	cpu0 = procCPU(t, p.cmd.Process.Pid)
	time.Sleep(window)
	used := procCPU(t, p.cmd.Process.Pid) - cpu0
	budget := time.Duration(window.Seconds()*float64(500*time.Microsecond)) + tick
	t.Logf("idle server used %v of CPU in %v (budget %v)", used, window, budget)
	if used > budget {
		t.Errorf("idle server used %v of CPU in %v, more than %v", used, window, budget)
	}
}

// procCPU returns a process's user plus system CPU time from
// /proc/PID/stat.
func procCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	// utime and stime are fields 14 and 15; the command name before them
	// is in parentheses and may hold spaces.
	rest := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(rest) < 13 {
		t.Fatalf("short /proc stat: %q", s)
	}
	ut, err1 := strconv.ParseInt(rest[11], 10, 64)
	st, err2 := strconv.ParseInt(rest[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("parse /proc stat %q", s)
	}
	return time.Duration(ut+st) * time.Second / 100
}

// lockedBuffer is a bytes.Buffer that a child process's output copier and
// the test may use at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
