//go:build race

package executor_test

// raceEnabled is set under the race detector, whose sync.Pool drops
// pooled items at random: allocation counts then vary.
const raceEnabled = true
