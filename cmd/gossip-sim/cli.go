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
	Sweep      []int         // node counts; empty: one run of Scenario.Nodes
	Fail       []float64     // failure sweep: fractions crashed; empty: none
	Repairs    []string      // the failure sweep's repair modes
	Horizon    time.Duration // the failure sweep's last batch; negative: from the detection delays
	JSON       string        // path of the JSON report; "" none, "-" stdout
	PerMessage bool          // print one line per message
	Markdown   bool          // print tables in Markdown
	NoMemory   bool          // skip the memory measurement
	Quiet      bool          // no progress lines on stderr
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
	if len(cfg.Fail) > 0 {
		return failSweep(cfg, stdout, stderr)
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

// failSweep runs the failure experiment (sim.FailScenario) for every
// fraction and repair mode, prints each run and then the sweep's table.
func failSweep(cfg config, stdout, stderr io.Writer) int {
	var reports []*sim.Report
	for _, frac := range cfg.Fail {
		horizon := cfg.Horizon
		if horizon < 0 {
			// Until the crashed members are known dead everywhere: the
			// SWIM detection delays at this fraction (measured once,
			// cached for the model's runs).
			sc := cfg.Scenario
			sc.Crash = frac
			if !cfg.Quiet {
				fmt.Fprintf(stderr, "gossip-sim: measuring SWIM's detection of %g%% crashed at %d nodes\n", 100*frac, min(sc.Nodes, sim.CalibrationNodes))
			}
			d, err := sim.Detection(sc)
			if err != nil {
				fmt.Fprintf(stderr, "gossip-sim: %v\n", err)
				return exitUsage
			}
			horizon = max(time.Minute, d.P99+30*time.Second)
		}
		for _, repair := range cfg.Repairs {
			sc := sim.FailScenario(cfg.Scenario, frac, horizon)
			sc.Repair = repair
			opt := sim.Options{}
			if !cfg.Quiet {
				opt.Progress = progressPrinter(stderr, sc.Nodes)
			}
			r, err := sim.Run(sc, opt)
			if err != nil {
				fmt.Fprintf(stderr, "gossip-sim: %v\n", err)
				return exitUsage
			}
			printReport(stdout, r, cfg.PerMessage, cfg.Markdown)
			reports = append(reports, r)
		}
	}
	printFailTable(stdout, reports, cfg.Markdown)
	if cfg.JSON != "" {
		if err := writeJSON(cfg.JSON, stdout, reports); err != nil {
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

// parsePercents parses "10,50,80,95" (percent) into fractions.
func parsePercents(s string) ([]float64, error) {
	var out []float64
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSuffix(strings.TrimSpace(part), "%")
		v, err := strconv.ParseFloat(part, 64)
		if err != nil || v <= 0 || v >= 100 {
			return nil, fmt.Errorf("bad percentage %q (want 0 < p < 100)", part)
		}
		out = append(out, v/100)
	}
	return out, nil
}

// protocolArg finds --protocol in args before parsing: the other flags'
// defaults depend on it.
func protocolArg(args []string) string {
	for k, a := range args {
		if a == "--" {
			break
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "protocol" {
			continue
		}
		if hasVal {
			return val
		}
		if k+1 < len(args) {
			return args[k+1]
		}
	}
	return sim.ProtoPlumtree
}

// defaultsFor is the scenario the flags start from.
func defaultsFor(protocol string) sim.Scenario {
	if protocol == sim.ProtoPush || protocol == sim.ProtoFlood {
		return sim.DefaultUnaryScenario(protocol)
	}
	sc := sim.DefaultScenario()
	sc.Protocol = protocol // validated after parsing
	return sc
}

// parseFlags parses the command line. Usage and syntax errors go to stderr.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	cfg := config{Scenario: defaultsFor(protocolArg(args))}
	sc := &cfg.Scenario
	fs := flag.NewFlagSet("gossip-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: gossip-sim [flags]

Simulates gossip over N nodes with virtual time: every node runs the real
protocol core; the network loses, delays and crashes as the flags say.
Prints reliability (the fraction of live nodes that got each message),
the time and hops until full delivery, copies per delivery and RMR
(relative message redundancy), and memory per node; --sweep repeats the
scenario for several N and prints how the figures grow; --fail runs the
failure experiment of the Plumtree and HyParView papers.

Protocols:
  plumtree  what users run (the default): every neighbour a stream peer;
            real core.Stream envelopes, Plumtree's eager and lazy push,
            grafts, prunes and anti-entropy on the runtime's timers; a lost
            envelope breaks its stream, which re-opens after a backoff and
            re-sends what was not acknowledged (memnet's model)
  flood     the seed's unary push to every neighbour, with ACKs and retries
  push      the seed's unary push to --fanout random neighbours

Defaults differ by protocol: plumtree runs 1000 nodes over the membership
overlay (each node chooses ceil(ln N)+2 members, links two-way), 50
messages at 10/s from 1s in batches of 10; push and flood run 1000 nodes
on a random 8-regular graph, 10 messages at time 0 (the defaults below are
those of the protocol given).

Membership repair (--repair, plumtree over --topology membership):
  swim   the real SWIM core (internal/swim) on every node, over the same
         links; each node's neighbours are rebalanced on its membership
         events as the runtime does (dead ones removed, random alive
         members fill k); at most %d nodes (every node holds every member)
  model  failure detection modelled: a dead neighbour is dropped after a
         delay drawn from the detection times the real SWIM core measured
         at min(N, %d) nodes with the same fraction crashed (scaled to N
         by the suspicion timeout's log10 N growth), then replaced by a
         random member not known dead
  none   no repair: the trees, lazy links, grafts and anti-entropy only
  auto   swim up to %d nodes, model above (none when nothing crashes)

Failure sweep (--fail 10,50,80,95): on --nodes (default 10000) nodes, %d
warm-up messages, then the given percentage of the nodes crashes at once
and batches of %d messages follow from live nodes right away and at 10s,
30s, 1m, 2m, 4m, 8m, … after the crash, until --fail-horizon; each
fraction runs once per --repair mode (default auto,none).

Latency specs: const:5ms, uniform:1ms-20ms, exp:mean=10ms,
lognormal:median=10ms,sigma=0.5.

Flags:
`, sim.MaxSwimNodes, sim.CalibrationNodes, sim.MaxSwimNodes, sim.FailWarmup, sim.FailBatch)
		fs.PrintDefaults()
	}
	var sweep, fail, repair, horizon string
	fs.StringVar(&sc.Protocol, "protocol", sc.Protocol, "plumtree, flood or push")
	fs.IntVar(&sc.Nodes, "nodes", sc.Nodes, "number of nodes")
	fs.StringVar(&sweep, "sweep", "", "comma-separated node counts (e.g. 1000,10k,100k): run the scenario for each and print growth")
	fs.StringVar(&fail, "fail", "", "comma-separated `percentages` (e.g. 10,50,80,95): the failure sweep")
	fs.StringVar(&horizon, "fail-horizon", "auto", "the failure sweep's last batch starts at the first offset at or past this `duration` after the crash; auto: SWIM's p99 detection delay + 30s, at least 1m")
	fs.StringVar(&sc.Topology, "topology", sc.Topology, "membership (the daemon's overlay: each node chooses ceil(ln N)+--fanout-extra members, links two-way), random (random connected --degree-regular graph), ring (node i → i+1) or full (at most 1000 nodes)")
	fs.IntVar(&sc.Degree, "degree", sc.Degree, "neighbours per node with --topology random")
	fs.IntVar(&sc.FanoutExtra, "fanout-extra", sc.FanoutExtra, "c in the ceil(ln N)+c members each node chooses with --topology membership")
	fs.StringVar(&repair, "repair", sc.Repair, "membership repair after crashes: swim, model, none or auto (with --fail: a comma-separated list, default auto,none)")
	fs.Var(fanoutFlag{&sc.Core.Fanout}, "fanout", "--protocol push: neighbours a node forwards a new message to (the core's default is 3), or all (-1) to flood")
	fs.Float64Var(&sc.Loss, "loss", sc.Loss, "probability that a send is lost: unary, half the requests, half the ACKs; plumtree, an envelope (which breaks its stream) or a SWIM datagram")
	fs.TextVar(&sc.Latency, "latency", sc.Latency, "one-way delay `spec` of every request, ACK, envelope and SWIM datagram")
	fs.DurationVar(&sc.Proc, "proc", sc.Proc, "delay between accepting a message and starting its forwards (unary), or between waking a stream's writer and writing (plumtree)")
	fs.Float64Var(&sc.Crash, "crash", sc.Crash, "fraction of nodes that crash (never a publisher)")
	fs.DurationVar(&sc.CrashAt, "crash-at", sc.CrashAt, "virtual time of the crash; 0: before the first publish")
	fs.Float64Var(&sc.Partition, "partition", sc.Partition, "--protocol push or flood: fraction of nodes on one side of a partition; 0: none")
	fs.DurationVar(&sc.PartitionAt, "partition-at", sc.PartitionAt, "virtual time the partition starts")
	fs.DurationVar(&sc.HealAt, "heal-at", sc.HealAt, "virtual time the partition heals; 0: never")
	fs.IntVar(&sc.Messages, "messages", sc.Messages, "messages published, each from a random live node")
	fs.IntVar(&sc.Publishers, "publishers", sc.Publishers, "publish from this many nodes, drawn at random among those that never crash; 0: any")
	fs.Float64Var(&sc.Rate, "rate", sc.Rate, "publishes per virtual second; 0: all at --start")
	fs.DurationVar(&sc.Start, "start", sc.Start, "virtual time of the first publish")
	fs.IntVar(&sc.Batch, "batch", sc.Batch, "report messages in batches of this many (aligned on the crash); 0: no batches")
	fs.DurationVar(&sc.Drain, "drain", 10*time.Second, "plumtree: how long the run goes on after the last publish")
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
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["fanout"] && sc.Protocol != sim.ProtoPush {
		return cfg, fmt.Errorf("--fanout applies to --protocol push only (plumtree pushes to its tree and announces to the other neighbours; flood sends to all)")
	}
	if set["partition"] && sc.Protocol == sim.ProtoPlumtree {
		return cfg, fmt.Errorf("--partition: only --protocol push and flood simulate partitions")
	}
	if fail != "" {
		fr, err := parsePercents(fail)
		if err != nil {
			return cfg, fmt.Errorf("--fail: %w", err)
		}
		if sweep != "" || set["crash"] || set["crash-at"] || set["messages"] || set["rate"] || set["start"] || set["batch"] {
			return cfg, fmt.Errorf("--fail sets its own schedule: it does not combine with --sweep, --crash, --crash-at, --messages, --rate, --start or --batch")
		}
		cfg.Fail = fr
		if !set["nodes"] {
			sc.Nodes = 10000
		}
		if !set["repair"] {
			repair = sim.RepairAuto + "," + sim.RepairNone
		}
		cfg.Repairs = strings.Split(repair, ",")
		cfg.Horizon = -1
		if horizon != "auto" {
			d, err := time.ParseDuration(horizon)
			if err != nil || d < 0 {
				return cfg, fmt.Errorf("--fail-horizon %q: want a duration or auto", horizon)
			}
			cfg.Horizon = d
		}
		for _, r := range cfg.Repairs {
			for _, f := range fr {
				c := sim.FailScenario(*sc, f, time.Minute)
				c.Repair = r
				if err := c.Validate(); err != nil {
					return cfg, err
				}
			}
		}
		return cfg, nil
	}
	sc.Repair = repair
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
