package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
)

// Exit statuses of Main.
const (
	ExitOK      = 0 // clean shutdown, or --help
	ExitFailure = 1 // a runtime failure: a listener could not be bound, the data dir is locked, …
	ExitUsage   = 2 // bad flags, environment or config file
)

// Main is gossipd without the process: it loads the configuration from
// args and env, runs the daemon until ctx ends, and returns the exit
// status. Logs go to stderr; stdout gets nothing but --help and --version.
// An error is printed to stderr as one line, "gossipd: …".
func Main(ctx context.Context, args, env []string, stdout, stderr io.Writer) int {
	cfg, err := Load(args, env, stdout)
	switch {
	case errors.Is(err, ErrHelp):
		return ExitOK
	case err != nil:
		printErr(stderr, err)
		return ExitUsage
	}
	if err := Run(ctx, cfg, NewLogger(cfg, stderr)); err != nil {
		printErr(stderr, err)
		return ExitFailure
	}
	return ExitOK
}

// NewLogger returns the daemon's logger: JSON or text (cfg.LogFormat) at
// cfg.LogLevel, written to w.
func NewLogger(cfg Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// printErr prints err as one line.
func printErr(w io.Writer, err error) {
	fmt.Fprintf(w, "gossipd: %s\n", oneLine(err))
}
