//go:build race

package azurefunctions_test

// raceEnabled: under the race detector every worker is several times its
// size and slower to start, so tests calibrated on memory tiers or on the
// function timeout cannot hold; they run in the plain test pass.
const raceEnabled = true
