package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	gossip "github.com/grpc-gossip/gossip"
)

// config is what the flags set; run takes it.
type config struct {
	Nodes    int           // number of nodes
	BasePort int           // node i listens on BasePort+i-1; 0: ephemeral ports
	Host     string        // address the nodes listen on
	Topology string        // ring, random or full
	Degree   int           // neighbours per node with the random topology
	Seed     uint64        // random topology seed (and node seeds)
	Messages int           // messages published per node
	Fanout   int           // the nodes' Config.Fanout (unary transport)
	Unary    bool          // --transport unary: the seed's PutMessageToClient instead of streams
	Timeout  time.Duration // how long to wait for full delivery after the first publish
	Serve    bool          // keep the cluster running after the summary until ctx ends
	Quiet    bool          // no progress lines
	TLS      bool          // mutual TLS between the nodes, with a CA made for the run
	LogLevel slog.Level    // level of the library's logs on stderr

	// Terminal forces progress output as on a terminal (one line rewritten
	// with \r) or not; nil detects it from stdout. Not a flag.
	Terminal *bool
}

// defaultConfig is the seed's demo: 20 nodes on 127.0.0.1:6001..6020 in a
// ring, 3 messages from every node.
func defaultConfig() config {
	return config{
		Nodes:    20,
		BasePort: 6001,
		Host:     "127.0.0.1",
		Topology: topoRing,
		Degree:   4,
		Seed:     1,
		Messages: 3,
		Fanout:   gossip.DefaultConfig().Fanout,
		Timeout:  30 * time.Second,
		LogLevel: slog.LevelWarn,
	}
}

// flagError is a command-line syntax error that the flag package has
// already reported, with the usage, on stderr.
type flagError struct{ err error }

func (e flagError) Error() string { return e.err.Error() }
func (e flagError) Unwrap() error { return e.err }

// parseFlags parses the command line into a config. Usage and flag errors
// are printed on stderr.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("gossip-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: gossip-demo [flags]

Starts a cluster of gossip nodes on this machine (the seed's demo: 20 nodes
on 127.0.0.1:6001..6020 in a ring), publishes messages from every node,
waits until every node has delivered every message, prints a summary and
exits: 0 when every delivery happened, 1 when some are missing, 2 when the
cluster could not be set up (bad flags, port in use).

Flags:
`)
		fs.PrintDefaults()
	}
	fs.IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "number of nodes")
	fs.IntVar(&cfg.BasePort, "base-port", cfg.BasePort, "node i listens on base-port+i-1; 0 gives every node an ephemeral port")
	fs.StringVar(&cfg.Host, "host", cfg.Host, "address the nodes listen on")
	fs.StringVar(&cfg.Topology, "topology", cfg.Topology, "topology `name`: ring (node i → node i+1), random (random connected graph, --degree neighbours per node) or full")
	fs.IntVar(&cfg.Degree, "degree", cfg.Degree, "neighbours per node with --topology random")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the random topology and of the nodes' random choices")
	fs.IntVar(&cfg.Messages, "messages", cfg.Messages, "messages published by every node")
	fs.IntVar(&cfg.Fanout, "fanout", cfg.Fanout, "with --transport unary: neighbours each node forwards a new message to")
	fs.Func("transport", "`name`: stream (default: one stream per neighbour, Plumtree with repair; every neighbour gets each message) or unary (the seed's PutMessageToClient to --fanout neighbours)", func(v string) error {
		switch v {
		case "stream":
			cfg.Unary = false
		case "unary":
			cfg.Unary = true
		default:
			return fmt.Errorf("unknown transport %q: stream or unary", v)
		}
		return nil
	})
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "how long to wait for every delivery, from the first publish")
	fs.BoolVar(&cfg.Serve, "serve", cfg.Serve, "after the summary keep the cluster running until SIGINT/SIGTERM")
	fs.BoolVar(&cfg.Quiet, "quiet", cfg.Quiet, "no progress lines (the summary is still printed)")
	fs.BoolVar(&cfg.TLS, "tls", cfg.TLS, "mutual TLS between the nodes (SPIFFE node certificates of a CA made for the run, in a temporary directory removed at exit); each node then dials with its own certificate")
	fs.TextVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "`level` of the logs on stderr: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return cfg, flagError{err} // -h/--help: wraps flag.ErrHelp
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q (flags start with -)", fs.Arg(0))
	}
	return cfg, cfg.validate()
}

// validate rejects flag values the demo cannot run with. The random
// topology's degree is checked when the graph is built.
func (c *config) validate() error {
	var errs []error
	if c.Nodes < 1 {
		errs = append(errs, fmt.Errorf("--nodes %d: need at least 1 node", c.Nodes))
	}
	if c.BasePort < 0 || c.BasePort > 65535 {
		errs = append(errs, fmt.Errorf("--base-port %d: not a TCP port", c.BasePort))
	} else if c.BasePort > 0 && c.Nodes > 0 && c.BasePort+c.Nodes-1 > 65535 {
		errs = append(errs, fmt.Errorf("--base-port %d with --nodes %d: the last node would need port %d, above 65535", c.BasePort, c.Nodes, c.BasePort+c.Nodes-1))
	}
	if strings.TrimSpace(c.Host) == "" {
		errs = append(errs, errors.New("--host: empty"))
	}
	switch c.Topology {
	case topoRing, topoRandom, topoFull:
	default:
		errs = append(errs, fmt.Errorf("--topology %q: want ring, random or full", c.Topology))
	}
	if c.Messages < 1 {
		errs = append(errs, fmt.Errorf("--messages %d: need at least 1", c.Messages))
	}
	if c.Fanout < 1 {
		errs = append(errs, fmt.Errorf("--fanout %d: need at least 1", c.Fanout))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("--timeout %v: must be positive", c.Timeout))
	}
	return errors.Join(errs...)
}

// Topology names accepted by --topology.
const (
	topoRing   = "ring"
	topoRandom = "random"
	topoFull   = "full"
)
