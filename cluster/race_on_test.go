//go:build race

package cluster

// raceDetector: the tests run under the race detector, which makes the
// SQLite of the state machine (Go code) many times slower.
const raceDetector = true
