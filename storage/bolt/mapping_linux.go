package bolt

import (
	"bytes"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

const canRelease = true

var pageSize = int64(os.Getpagesize())

// fileRSS returns the process's file-backed and shared resident memory in
// bytes: the third field of /proc/self/statm (pages), or 0 when unreadable.
func fileRSS() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := bytes.Fields(b)
	if len(f) < 3 {
		return 0
	}
	n, err := strconv.ParseInt(string(f[2]), 10, 64)
	if err != nil {
		return 0
	}
	return n * pageSize
}

// dropMapping unmaps the resident pages of [addr, addr+size) from the
// process's page tables; for a shared file mapping the page cache keeps them.
func dropMapping(addr, size uintptr) error {
	if addr == 0 || size == 0 {
		return nil
	}
	_, _, errno := unix.Syscall(unix.SYS_MADVISE, addr, size, unix.MADV_DONTNEED)
	if errno != 0 {
		return errno
	}
	return nil
}
