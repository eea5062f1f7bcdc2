// Package cli implements gossipctl, the command-line client of gossipd, in
// the tailscale layout: this file holds the root command, its global flags
// and the exit-status rules, and each subcommand lives in a file of its
// own (publish.go, subscribe.go, members.go, neighbors.go, status.go,
// health.go).
//
// Exit statuses: 0 success; 1 the command failed (the daemon is not
// reachable, an RPC returned an error, health is not SERVING, a
// subscription was ended by the daemon); 2 a usage error (unknown
// subcommand, bad flag or argument). Every failure is reported as one line
// on stderr starting with "gossipctl: "; usage errors add a hint line.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/grpc-gossip/gossip/internal/version"
)

// Exit statuses of Main.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// DefaultAddr is where gossipd listens by default (its --listen default;
// a test keeps the two equal).
const DefaultAddr = "127.0.0.1:9001"

// DefaultTimeout is --timeout's default: the deadline of each RPC.
const DefaultTimeout = 5 * time.Second

// EnvAddr names the environment variable that overrides DefaultAddr
// (the --addr flag overrides both).
const EnvAddr = "GOSSIPCTL_ADDR"

// Output formats (-o).
const (
	outputTable = "table"
	outputJSON  = "json"
)

// Main runs gossipctl with args (without the program name) and returns
// the exit status. SIGINT and SIGTERM cancel the running command (for
// subscribe that is the normal way to stop, with status 0); a second
// signal kills the process.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // restore the default action: a second signal kills
	}()
	return run(ctx, args, stdin, stdout, stderr, os.Getenv)
}

// globals are the root command's flags and the process's streams, shared
// by every subcommand.
type globals struct {
	addr    string
	output  string
	timeout time.Duration
	sec     securityFlags // security.go

	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer // for lines that go with a result (publish --lines' failed lines)
}

func (g *globals) json() bool { return g.output == outputJSON }

// run is Main with the context and the environment injected (tests cancel
// ctx instead of sending a signal).
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	g := &globals{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRootCmd(g)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	var fe *failure
	if errors.As(err, &fe) {
		if fe.msg != "" {
			fmt.Fprintf(stderr, "gossipctl: %s\n", oneLine(fe.msg))
		}
		return exitFail
	}
	// Anything else comes from parsing the command line: cobra's own
	// errors (unknown command or flag, wrong number of arguments, a bad
	// flag value) and our flag checks.
	if cmd == nil {
		cmd = root
	}
	fmt.Fprintf(stderr, "gossipctl: %s\nRun '%s --help' for usage.\n", strings.TrimSpace(err.Error()), cmd.CommandPath())
	return exitUsage
}

func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "gossipctl",
		Short: "Control and observe a gossipd node",
		Long: `gossipctl talks to a gossipd node over its gRPC API: it publishes
messages, follows the messages the node delivers and the events it sees
(watch), and shows the node's members, neighbours, status and health.

The node's address is --addr, else $` + EnvAddr + `, else ` + DefaultAddr + `.
Output is a table for people; -o json prints JSON for scripts (subscribe
always prints one JSON object per line; watch prints text lines, or JSON
lines with -o json).`,
		Version:       version.Get().String(),
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          unknownCommand,
		// A bare "gossipctl" is a usage error rather than help and 0.
		RunE: func(*cobra.Command, []string) error {
			return errors.New("missing subcommand")
		},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return g.check(cmd)
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SuggestionsMinimumDistance = 2 // cobra's default, which SuggestionsFor does not apply
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return err })

	f := root.PersistentFlags()
	f.StringVar(&g.addr, "addr", DefaultAddr, "gossipd's gRPC address, host:port; $"+EnvAddr+", when set, replaces the default")
	f.StringVarP(&g.output, "output", "o", outputTable, "output format: table or json")
	f.DurationVar(&g.timeout, "timeout", DefaultTimeout, "deadline of each RPC (subscribe: of connecting only)")
	g.sec.register(f)

	root.AddCommand(
		newPublishCmd(g),
		newSubscribeCmd(g),
		newMembersCmd(g),
		newNeighborsCmd(g),
		newStatusCmd(g),
		newWatchCmd(g),
		newTraceCmd(g),
		newHealthCmd(g),
		newTLSCmd(g),
	)
	return root
}

// check validates the global flags and applies $GOSSIPCTL_ADDR; its
// errors are usage errors.
func (g *globals) check(cmd *cobra.Command) error {
	if !cmd.Flags().Changed("addr") {
		if a := strings.TrimSpace(g.getenv(EnvAddr)); a != "" {
			g.addr = a
		}
	}
	if g.addr == "" {
		return errors.New("--addr is empty")
	}
	switch g.output {
	case outputTable, outputJSON:
	default:
		return fmt.Errorf("invalid --output %q: want table or json", g.output)
	}
	if g.timeout <= 0 {
		return fmt.Errorf("invalid --timeout %v: must be positive", g.timeout)
	}
	return g.sec.check(cmd, g.getenv)
}

// unknownCommand rejects arguments to the root command, that is an
// unknown subcommand, suggesting near misses on the same line.
func unknownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q", args[0])
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(s, " or "))
	}
	return errors.New(msg)
}

// failure is a command that ran and failed: run prints msg (when not
// empty) as one line and exits with exitFail. Subcommands return nothing
// else from RunE, so any other error is a usage error.
type failure struct{ msg string }

func (f *failure) Error() string { return f.msg }

func failf(format string, args ...any) error {
	return &failure{msg: fmt.Sprintf(format, args...)}
}

// oneLine folds s onto one line, so that a message from the network
// cannot break the one-line error contract.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}
