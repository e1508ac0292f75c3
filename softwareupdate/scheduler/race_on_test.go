//go:build race

package scheduler_test

// raceDetector: the race detector slows the simulated fleet several times
// over, so TestHostileFleet runs a tenth of it.
const raceDetector = true
