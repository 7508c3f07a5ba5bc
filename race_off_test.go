//go:build !race

package lithops_test

const raceEnabled = false
