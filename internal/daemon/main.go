package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	gossip "github.com/grpc-gossip/gossip"
)

// Exit statuses of Main.
const (
	ExitOK      = 0 // clean shutdown, or --help
	ExitFailure = 1 // a runtime failure: a listener could not be bound, the data dir is locked, …
	ExitUsage   = 2 // bad flags, environment or config file

	// Bad state under --data-dir (gossip.db): nothing is reset; the
	// message names the file and what to do.
	ExitStateCorrupt   = 3 // corrupt or truncated
	ExitStateOtherNode = 4 // written by another --id
	ExitStateNewer     = 5 // written by a newer gossipd (format version)
	ExitDiskFull       = 6 // no space left, at start or while running
)

// exitCode is Main's status for Run's error.
func exitCode(err error) int {
	switch {
	case errors.Is(err, gossip.ErrStateCorrupt):
		return ExitStateCorrupt
	case errors.Is(err, gossip.ErrStateOtherNode):
		return ExitStateOtherNode
	case errors.Is(err, gossip.ErrStateNewerFormat):
		return ExitStateNewer
	case errors.Is(err, gossip.ErrDiskFull):
		return ExitDiskFull
	}
	return ExitFailure
}

// isStateError reports whether err is about the state under --data-dir.
func isStateError(err error) bool {
	for _, k := range []error{gossip.ErrStateCorrupt, gossip.ErrStateOtherNode, gossip.ErrStateNewerFormat, gossip.ErrDiskFull, gossip.ErrStateLocked} {
		if errors.Is(err, k) {
			return true
		}
	}
	return false
}

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
		return exitCode(err)
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
