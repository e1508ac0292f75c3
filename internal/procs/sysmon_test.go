package procs

import (
	"slices"
	"testing"
)

func TestQuietSysmonEnv(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      []string
		want    []string
		changed bool
	}{
		{"no GODEBUG", []string{"PATH=/bin", "HOME=/root"},
			[]string{"PATH=/bin", "HOME=/root", "GODEBUG=" + QuietSysmonSetting}, true},
		{"empty GODEBUG", []string{"GODEBUG=", "PATH=/bin"},
			[]string{"GODEBUG=" + QuietSysmonSetting, "PATH=/bin"}, true},
		{"other settings kept", []string{"GODEBUG=madvdontneed=1,gctrace=1"},
			[]string{"GODEBUG=madvdontneed=1,gctrace=1," + QuietSysmonSetting}, true},
		{"schedtrace already set", []string{"GODEBUG=schedtrace=1000", "PATH=/bin"},
			[]string{"GODEBUG=schedtrace=1000", "PATH=/bin"}, false},
		{"schedtrace=0 is a choice too", []string{"GODEBUG=gctrace=1,schedtrace=0"},
			[]string{"GODEBUG=gctrace=1,schedtrace=0"}, false},
		{"a repeated GODEBUG: the first is the one in force", []string{"GODEBUG=gctrace=1", "GODEBUG=schedtrace=5"},
			[]string{"GODEBUG=gctrace=1," + QuietSysmonSetting}, true},
		{"a name that only ends like it", []string{"XGODEBUG=schedtrace=1"},
			[]string{"XGODEBUG=schedtrace=1", "GODEBUG=" + QuietSysmonSetting}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.in)
			got, changed := QuietSysmonEnv(in)
			if changed != tc.changed || !slices.Equal(got, tc.want) {
				t.Errorf("QuietSysmonEnv(%q) = %q, %v; want %q, %v", tc.in, got, changed, tc.want, tc.changed)
			}
			if !slices.Equal(in, tc.in) {
				t.Errorf("QuietSysmonEnv changed its input: %q", in)
			}
			if changed {
				// What a process started with the result would do: not ask again.
				if again, ch := QuietSysmonEnv(got); ch || !slices.Equal(again, got) {
					t.Errorf("second call changed %q to %q", got, again)
				}
			}
		})
	}
}
