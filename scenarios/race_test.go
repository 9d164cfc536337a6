//go:build race

package scenarios

// raceEnabled: the test binary runs under the race detector.
const raceEnabled = true
