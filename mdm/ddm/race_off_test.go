//go:build !race

package ddm_test

const raceEnabled = false
