//go:build race

package hiqlite_test

// raceEnabled reports whether the race detector is on: its shadow memory
// and slow-down make the tests that move tens of MiB in one value too heavy,
// so those run in CI's separate run without it.
const raceEnabled = true
