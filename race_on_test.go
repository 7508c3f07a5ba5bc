//go:build race

package lithops_test

// raceEnabled: the race detector's runtime inflates every worker's resident
// memory, so tests of memory limits cannot hold under -race.
const raceEnabled = true
