//go:build !race

package azurefunctions_test

const raceEnabled = false
