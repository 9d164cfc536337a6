// Package exitcode defines the harness's typed exit codes and the errors that
// carry them from library code up to cmd/harness, the only place that exits.
package exitcode

import (
	"errors"
	"fmt"
)

// The exit codes of every harness command.
const (
	Go           = 0 // every criterion holds
	NoGo         = 1 // at least one criterion failed
	Inconclusive = 2 // evidence missing, or the run was interrupted
	BadInput     = 3 // bad input or configuration
	Failure      = 4 // the harness itself failed (missing binary, crash)
	// Unsaved is harness serve's exit when its layer closed with
	// acknowledged events that it could not write to Redis (lost).
	Unsaved = 5
)

// Error is an error that says which exit code it should end the process with.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Config marks err as bad input or configuration (exit 3).
func Config(err error) error {
	if err == nil {
		return nil
	}
	return &Error{Code: BadInput, Err: err}
}

// Configf formats a bad-input error (exit 3).
func Configf(format string, args ...any) error {
	return Config(fmt.Errorf(format, args...))
}

// Harness marks err as a failure of the harness or its environment (exit 4).
func Harness(err error) error {
	if err == nil {
		return nil
	}
	return &Error{Code: Failure, Err: err}
}

// Harnessf formats a harness failure (exit 4).
func Harnessf(format string, args ...any) error {
	return Harness(fmt.Errorf(format, args...))
}

// Of returns the exit code err asks for: 0 for nil, the code of the first
// *Error in its chain, and Failure for any other error.
func Of(err error) int {
	if err == nil {
		return Go
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Failure
}
