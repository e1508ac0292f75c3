//go:build !linux

package bolt

// Elsewhere (development on macOS) the governor is off.
const canRelease = false

func fileRSS() int64 { return 0 }

func dropMapping(addr, size uintptr) error { return nil }
