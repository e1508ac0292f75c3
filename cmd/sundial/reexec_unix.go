//go:build unix

package main

import (
	"fmt"
	"os"
	"syscall"
)

// execSelf replaces the process with this binary, the same arguments and
// env. The process keeps its PID, so a supervisor (systemd, a container
// runtime, the load test) sees no difference.
func execSelf(env []string) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	return syscall.Exec(exe, os.Args, env)
}
