package bolt

import (
	"bytes"
	"io"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

const canRelease = true

var pageSize = int64(os.Getpagesize())

// statm is /proc/self/statm, kept open: the governor samples it every
// 20 ms while transactions run, and a pread of an open file costs a
// twentieth of opening, reading and closing it.
var statm struct {
	sync.Mutex
	f   *os.File
	buf [128]byte
}

// fileRSS returns the process's file-backed and shared resident memory in
// bytes: the third field of /proc/self/statm (pages), or 0 when unreadable.
func fileRSS() int64 {
	statm.Lock()
	defer statm.Unlock()
	if statm.f == nil {
		f, err := os.Open("/proc/self/statm")
		if err != nil {
			return 0
		}
		statm.f = f
	}
	n, err := statm.f.ReadAt(statm.buf[:], 0)
	if err != nil && err != io.EOF {
		return 0
	}
	f := bytes.Fields(statm.buf[:n])
	if len(f) < 3 {
		return 0
	}
	pages, err := strconv.ParseInt(string(f[2]), 10, 64)
	if err != nil {
		return 0
	}
	return pages * pageSize
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
