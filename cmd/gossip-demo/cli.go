package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Exit statuses.
const (
	exitOK         = 0 // every node delivered every message
	exitIncomplete = 1 // some deliveries missing (timeout, SIGINT)
	exitSetup      = 2 // bad flags, port in use, or another setup failure
)

// realMain is main without the process: it parses args, runs the demo
// until ctx ends or the run is over, and returns the exit status.
func realMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		var fe flagError
		switch {
		case errors.Is(err, flag.ErrHelp):
			return exitOK
		case errors.As(err, &fe): // already reported by the flag package
		default:
			printErr(stderr, err)
		}
		return exitSetup
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	s, err := run(ctx, cfg, stdout, logger)
	if err != nil {
		printErr(stderr, err)
		return exitSetup
	}
	return s.exitCode()
}

// printErr prints one "gossip-demo: …" line per line of err.
func printErr(w io.Writer, err error) {
	for line := range strings.SplitSeq(err.Error(), "\n") {
		fmt.Fprintf(w, "gossip-demo: %s\n", line)
	}
}
