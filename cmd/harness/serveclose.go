package main

import (
	"errors"
	"log/slog"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/internal/exitcode"
)

// closeServed closes the layer harness serve served and folds its result
// into serve's: acknowledged events that the layer could not write to
// Redis are logged with their count, and a loss makes serve exit with
// exitcode.Unsaved (unless it already failed otherwise). Events kept in
// the outbox journal are logged; they are written by the next start.
func closeServed(l *impl.Layer, log *slog.Logger, code int, err error) (int, error) {
	cerr := l.Close()
	var unsaved *impl.UnsavedError
	isUnsaved := errors.As(cerr, &unsaved)
	switch {
	case cerr == nil:
	case isUnsaved && unsaved.Lost == 0:
		log.Warn("stopped with acknowledged events not in Redis, kept in the outbox journal", "kept", unsaved.Kept)
	case isUnsaved:
		log.Error("stopped: acknowledged events lost", "lost", unsaved.Lost, "kept", unsaved.Kept, "err", cerr)
		if err == nil {
			return exitcode.Unsaved, &exitcode.Error{Code: exitcode.Unsaved, Err: cerr}
		}
	default:
		log.Warn("closing the layer", "err", cerr)
	}
	return code, err
}
