//go:build !unix

package main

// execSelf is nil where a process cannot replace itself: the server runs
// with the runtime's settings as it was started.
var execSelf func(env []string) error
