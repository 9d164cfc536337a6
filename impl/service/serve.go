package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/redact"
)

// Served is one layer of a registered profile served over HTTP until a
// context ends: what `harness serve` runs, and what a test binary runs as
// an instance process with profiles of its own.
type Served struct {
	Profiles *impl.Profiles
	Profile  string
	Addr     string
	// Config configures the layer (and, with Control, every layer a
	// control reset builds).
	Config impl.Config
	// Control serves the control API with Token (docs/http.md).
	Control bool
	Token   string
	// Options are the service's; Options.Logger is required.
	Options Options
	// Out gets the "serving profile P on URL" line the harness waits
	// for, and the line saying the service stopped; Err the control API's
	// warning.
	Out, Err io.Writer
}

// shutdownTimeout bounds a stop: open SSE streams are closed and their
// connections unregistered within it.
const shutdownTimeout = 10 * time.Second

// Serve builds the layer, serves it until ctx ends, shuts the service down
// and closes the layer. Its error carries the exit code (exitcode.Of):
// bad input for a refused profile, configuration or address, a harness
// failure when the shutdown fails, and exitcode.Unsaved when the layer
// closed with acknowledged events it could not write to Redis (logged
// with their count; events kept in the outbox journal are logged too, and
// written by the next start on it).
func Serve(ctx context.Context, s Served) (err error) {
	log := s.Options.Logger
	if log == nil {
		return exitcode.Harnessf("serve: no logger")
	}
	layer, err := s.Profiles.New(ctx, s.Profile, s.Config)
	if err != nil {
		return exitcode.Config(err)
	}
	opts := s.Options
	if s.Control {
		opts.Control = &Control{Base: s.Config, Token: s.Token, New: func(ctx context.Context, c impl.Config) (*impl.Layer, error) {
			return s.Profiles.New(ctx, s.Profile, c)
		}}
	}
	svc := New(layer, opts)
	defer func() { err = closeServed(svc.Layer(), opts, err) }()
	url, err := svc.Start(ctx, s.Addr)
	if err != nil {
		return exitcode.Config(err)
	}
	if s.Control {
		fmt.Fprintln(s.Err, "WARNING: harness control API on (/_harness/): a client with HARNESS_CONTROL_TOKEN can reset the layer and touch the registry; for test stacks only")
	}
	fmt.Fprintf(s.Out, "serving profile %s on %s (redis %s, mode %s)\n", s.Profile, url,
		redact.URL(s.Config.URL), layer.Manager.Mode())
	<-ctx.Done()
	shut, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := svc.Shutdown(shut); err != nil {
		return exitcode.Harness(err)
	}
	fmt.Fprintln(s.Out, "stopped: SSE connections unregistered")
	return nil
}

// closeServed closes the layer Serve served and folds its result into
// Serve's: acknowledged events that the layer could not write to Redis
// are logged with their count, and a loss makes Serve fail with
// exitcode.Unsaved (unless it already failed otherwise).
func closeServed(l *impl.Layer, opts Options, err error) error {
	cerr := l.Close()
	var unsaved *impl.UnsavedError
	isUnsaved := errors.As(cerr, &unsaved)
	switch {
	case cerr == nil:
	case isUnsaved && unsaved.Lost == 0:
		opts.Logger.Warn("stopped with acknowledged events not in Redis, kept in the outbox journal", "kept", unsaved.Kept)
	case isUnsaved:
		opts.Logger.Error("stopped: acknowledged events lost", "lost", unsaved.Lost, "kept", unsaved.Kept, "err", cerr)
		if err == nil {
			return &exitcode.Error{Code: exitcode.Unsaved, Err: cerr}
		}
	default:
		opts.Logger.Warn("closing the layer", "err", cerr)
	}
	return err
}
