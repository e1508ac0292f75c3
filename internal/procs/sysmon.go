package procs

import "strings"

// Go's runtime runs a monitor thread, sysmon, beside the scheduler. It
// takes a P back from a thread blocked in a system call, preempts long
// running goroutines and polls the network when nobody else does. It
// sleeps 20 µs between rounds, doubling up to 10 ms once a round has
// found nothing to do for 50 rounds in a row. When every P is idle it
// sleeps until woken, and the next system call wakes it with its period
// reset to 20 µs.
//
// A lightly loaded server, with the Governor's one P, finds every P idle
// many times a second: each request that arrives wakes sysmon back to a
// 20 µs period, and each database fsync then keeps it there. Measured on
// the 2-vCPU VM of docs/benchmarks.md, sysmon was 17 % of the server's
// CPU during command round trips (3,200 wakeups a second, ~19 µs each).
//
// The runtime has one setting under which sysmon never sleeps until woken:
// a scheduler trace period (GODEBUG=schedtrace=N, N milliseconds). With
// the longest period the runtime accepts, about 24.8 days, sysmon simply
// backs off to its 10 ms period while there is nothing to take back, and
// returns to 20 µs as soon as it takes a P back from a long system call.
// The trace itself prints a one-line scheduler summary to standard error
// whenever a period has passed since the host booted: at most once at
// start and then every 24.8 days.

// QuietSysmonSetting is the GODEBUG setting that keeps sysmon from
// sleeping until woken (see above).
const QuietSysmonSetting = "schedtrace=2147483647"

// QuietSysmonEnv returns environ with QuietSysmonSetting added to GODEBUG,
// and whether it added it. It adds nothing when GODEBUG already names
// schedtrace (whoever set it chose the value), so a process started with
// the returned environment does not ask again.
func QuietSysmonEnv(environ []string) ([]string, bool) {
	out := make([]string, 0, len(environ)+1)
	found := false
	for _, kv := range environ {
		v, ok := strings.CutPrefix(kv, "GODEBUG=")
		if !ok {
			out = append(out, kv)
			continue
		}
		if found {
			// A repeated variable: the process would see only one of
			// them, so keep the first as the runtime does and drop the
			// rest rather than guess.
			continue
		}
		found = true
		for field := range strings.SplitSeq(v, ",") {
			if strings.HasPrefix(strings.TrimSpace(field), "schedtrace=") {
				return environ, false
			}
		}
		if v == "" {
			kv = "GODEBUG=" + QuietSysmonSetting
		} else {
			kv = "GODEBUG=" + v + "," + QuietSysmonSetting
		}
		out = append(out, kv)
	}
	if !found {
		out = append(out, "GODEBUG="+QuietSysmonSetting)
	}
	return out, true
}
