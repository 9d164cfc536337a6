//go:build race

package main

// raceEnabled: this test binary is built with -race, so a binary built
// with -race reuses its compiled packages.
const raceEnabled = true
