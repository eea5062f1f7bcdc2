package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-gossip/gossip/internal/core"
	"github.com/grpc-gossip/gossip/internal/sim"
)

// Exit statuses.
const (
	exitOK    = 0 // the simulation ran (whatever it found)
	exitError = 1 // the JSON report could not be written
	exitUsage = 2 // bad flags or an impossible scenario
)

// config is what the flags set.
type config struct {
	Scenario   sim.Scenario
	Sweep      []int  // node counts; empty: one run of Scenario.Nodes
	JSON       string // path of the JSON report; "" none, "-" stdout
	PerMessage bool   // print one line per message
	Markdown   bool   // print tables in Markdown
	NoMemory   bool   // skip the memory measurement
	Quiet      bool   // no progress lines on stderr
}

// realMain is main without the process.
func realMain(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		var fe flagError
		if !errors.As(err, &fe) {
			fmt.Fprintf(stderr, "gossip-sim: %v\n", err)
		}
		return exitUsage
	}
	sizes := cfg.Sweep
	if len(sizes) == 0 {
		sizes = []int{cfg.Scenario.Nodes}
	}
	var reports []*sim.Report
	for _, n := range sizes {
		sc := cfg.Scenario
		sc.Nodes = n
		opt := sim.Options{MeasureMemory: !cfg.NoMemory}
		if !cfg.Quiet {
			opt.Progress = progressPrinter(stderr, n)
		}
		r, err := sim.Run(sc, opt)
		if err != nil {
			fmt.Fprintf(stderr, "gossip-sim: %v\n", err)
			return exitUsage
		}
		printReport(stdout, r, cfg.PerMessage, cfg.Markdown)
		reports = append(reports, r)
	}
	if len(reports) > 1 {
		printGrowth(stdout, reports, cfg.Markdown)
	}
	if cfg.JSON != "" {
		var v any = reports[0]
		if len(cfg.Sweep) > 0 {
			v = reports
		}
		if err := writeJSON(cfg.JSON, stdout, v); err != nil {
			fmt.Fprintf(stderr, "gossip-sim: %v\n", err)
			return exitError
		}
	}
	return exitOK
}

// progressPrinter prints a line at most every 5 s of wall time.
func progressPrinter(w io.Writer, n int) func(time.Duration, uint64, int) {
	last := time.Now()
	return func(virtual time.Duration, events uint64, queued int) {
		if time.Since(last) < 5*time.Second {
			return
		}
		last = time.Now()
		fmt.Fprintf(w, "gossip-sim: N=%d virtual %v, %d events, %d queued\n", n, virtual.Round(time.Millisecond), events, queued)
	}
}

func writeJSON(path string, stdout io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// flagError is a syntax error the flag package has already reported.
type flagError struct{ err error }

func (e flagError) Error() string { return e.err.Error() }
func (e flagError) Unwrap() error { return e.err }

// fanoutFlag is --fanout: a positive number, or "all" / -1 for a flood.
type fanoutFlag struct{ p *int }

func (f fanoutFlag) String() string {
	if f.p == nil {
		return ""
	}
	return sim.FanoutString(*f.p)
}

func (f fanoutFlag) Set(s string) error {
	if s == "all" {
		*f.p = core.FanoutAll
		return nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || (v < 1 && v != core.FanoutAll) {
		return fmt.Errorf("want a positive number, or all (-1) to flood")
	}
	*f.p = v
	return nil
}

// parseSizes parses "1000,10k,1e5"-style node counts (k and m suffixes).
func parseSizes(s string) ([]int, error) {
	var out []int
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		mult := 1
		switch {
		case strings.HasSuffix(part, "k"):
			mult, part = 1000, strings.TrimSuffix(part, "k")
		case strings.HasSuffix(part, "m"):
			mult, part = 1000000, strings.TrimSuffix(part, "m")
		}
		v, err := strconv.Atoi(part)
		if err != nil || v < 1 {
			return nil, fmt.Errorf("bad node count %q", part)
		}
		out = append(out, v*mult)
	}
	return out, nil
}

// parseFlags parses the command line. Usage and syntax errors go to stderr.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	cfg := config{Scenario: sim.DefaultScenario()}
	sc := &cfg.Scenario
	fs := flag.NewFlagSet("gossip-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: gossip-sim [flags]

Simulates gossip over N nodes with virtual time: every node runs the real
protocol core; the network loses, delays, crashes and partitions as the
flags say. Prints the time and rounds until full delivery, copies per
delivery, the delivery ratio and memory per node; --sweep repeats the same
scenario for several N and prints how the figures grow.

Latency specs: const:5ms, uniform:1ms-20ms, exp:mean=10ms,
lognormal:median=10ms,sigma=0.5.

Flags:
`)
		fs.PrintDefaults()
	}
	var sweep string
	fs.IntVar(&sc.Nodes, "nodes", sc.Nodes, "number of nodes")
	fs.StringVar(&sweep, "sweep", "", "comma-separated node counts (e.g. 1000,10k,100k): run the scenario for each and print growth")
	fs.StringVar(&sc.Topology, "topology", sc.Topology, "random (random connected --degree-regular graph), ring (node i → i+1) or full (at most 1000 nodes)")
	fs.IntVar(&sc.Degree, "degree", sc.Degree, "neighbours per node with --topology random")
	fs.Var(fanoutFlag{&sc.Core.Fanout}, "fanout", "neighbours a node forwards a new message to (the core's default is 3), or all (-1) to flood")
	fs.Float64Var(&sc.Loss, "loss", sc.Loss, "probability that a send attempt is lost (half the request, half the ACK)")
	fs.TextVar(&sc.Latency, "latency", sc.Latency, "one-way delay `spec` of every request and ACK")
	fs.DurationVar(&sc.Proc, "proc", sc.Proc, "delay between accepting a message and starting its forwards")
	fs.Float64Var(&sc.Crash, "crash", sc.Crash, "fraction of nodes that crash (never a publisher)")
	fs.DurationVar(&sc.CrashAt, "crash-at", sc.CrashAt, "virtual time of the crash; 0: before the first publish")
	fs.Float64Var(&sc.Partition, "partition", sc.Partition, "fraction of nodes on one side of a partition; 0: none")
	fs.DurationVar(&sc.PartitionAt, "partition-at", sc.PartitionAt, "virtual time the partition starts")
	fs.DurationVar(&sc.HealAt, "heal-at", sc.HealAt, "virtual time the partition heals; 0: never")
	fs.IntVar(&sc.Messages, "messages", sc.Messages, "messages published, each from a random live node")
	fs.Float64Var(&sc.Rate, "rate", sc.Rate, "publishes per virtual second; 0: all at time 0")
	fs.Uint64Var(&sc.Seed, "seed", sc.Seed, "seed of everything random")
	fs.DurationVar(&sc.Tick, "tick", time.Second, "interval of every node's decay (core Tick); negative: never")
	fs.DurationVar(&sc.MaxTime, "max-time", time.Hour, "stop at this virtual time even if events remain")
	fs.DurationVar(&sc.Core.AckTimeout, "ack-timeout", core.DefaultAckTimeout, "core AckTimeout: deadline of one send attempt")
	fs.IntVar(&sc.Core.MaxAttempts, "max-attempts", core.DefaultMaxAttempts, "core MaxAttempts: attempts per forward, the first included")
	fs.StringVar(&cfg.JSON, "json", "", "also write the report(s) as JSON to this `file` (- for stdout)")
	fs.BoolVar(&cfg.PerMessage, "per-message", false, "print one line per message")
	fs.BoolVar(&cfg.Markdown, "markdown", false, "print tables in Markdown")
	fs.BoolVar(&cfg.NoMemory, "no-memory", false, "skip the memory measurement (saves a few garbage collections)")
	fs.BoolVar(&cfg.Quiet, "quiet", false, "no progress lines on stderr")
	if err := fs.Parse(args); err != nil {
		return cfg, flagError{err}
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q (flags start with -)", fs.Arg(0))
	}
	if sweep != "" {
		sizes, err := parseSizes(sweep)
		if err != nil {
			return cfg, fmt.Errorf("--sweep: %w", err)
		}
		cfg.Sweep = sizes
	}
	// Validate a copy for every size now, so a bad flag fails before any run.
	sizes := cfg.Sweep
	if len(sizes) == 0 {
		sizes = []int{sc.Nodes}
	}
	for _, n := range sizes {
		c := *sc
		c.Nodes = n
		if err := c.Validate(); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}
