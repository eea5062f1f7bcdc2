// Command bench runs the same gossip scenario against this project and the
// systems it is compared with, and reports latency, delivery, wire cost,
// sustainable rate, CPU and memory for each.
//
// The parent process runs every combination of system × profile × payload
// size × cluster size, one after another, each in a child process (this
// binary re-executed with --child), so that the child's CPU time and peak
// RSS (getrusage) belong to one system only. The child prints one JSON
// result on stdout and logs to stderr. The parent prints a table and writes
// <out>/<date>.json and PNG plots under <out>/<date>/.
//
//	go run ./cmd/bench --quick                  # make bench-quick: N=20, 100 B, both profiles, short phases
//	go run ./cmd/bench                          # make bench: N=20 and 50, 100 B / 1 KiB / 64 KiB
//	go run ./cmd/bench --impls gossip-unary --profiles equalised --nodes 50 --payloads 1024
//
// It exits non-zero when a run fails, and when one of this project's
// streaming systems (gossip-* but gossip-unary) lost an acknowledged
// publish in the overload phase (the line "LOSS UNDER OVERLOAD" says
// which); the other systems, the seed's unary push among them, do not
// promise that, and only report their figure.
//
// See docs/PERFORMANCE.md for the scenario, the figures and the results.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-gossip/gossip/bench/internal/harness"
)

// options are the parsed flags.
type options struct {
	quick    bool
	nodes    []int
	impls    []string
	profiles []harness.Profile
	payloads []int
	degree   int
	out      string
	plots    bool
	pprof    string
	timeout  time.Duration // per child; 0 = from the phases
	report   string        // re-render this results JSON instead of running
	phases   harness.Phases

	// child mode
	child       bool
	impl        string
	profile     harness.Profile
	payload     int
	phaseConfig string
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	switch {
	case o.child:
		os.Exit(runChild(o))
	case o.report != "":
		os.Exit(rerender(o.report))
	}
	os.Exit(runParent(o))
}

func parseFlags(args []string) (*options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	o := &options{}
	var nodes, implList, profiles, payloads string
	full := harness.FullPhases()
	fs.BoolVar(&o.quick, "quick", false, "the quick suite: N=20, both profiles, 100 B, short phases (flags given explicitly still apply)")
	fs.StringVar(&nodes, "nodes", "20,50", "cluster sizes, comma-separated (quick: 20)")
	fs.StringVar(&implList, "impls", strings.Join(implNames(), ","), "systems to run, comma-separated")
	fs.StringVar(&profiles, "profiles", "default,equalised", "profiles, comma-separated")
	fs.StringVar(&payloads, "payloads", "100,1024,65536", "payload sizes in bytes, comma-separated (quick: 100)")
	fs.IntVar(&o.degree, "degree", 6, "fanout / mesh degree of the equalised profile")
	fs.StringVar(&o.out, "out", "results", "directory for <date>.json and <date>/*.png")
	fs.BoolVar(&o.plots, "plots", true, "write PNG plots")
	fs.StringVar(&o.pprof, "pprof", "", "if set, each child writes a CPU profile into this directory")
	fs.StringVar(&o.report, "report", "", "do not run: print the table and rewrite table.md and the plots of an existing results JSON (<out>/<date>.json)")
	fs.DurationVar(&o.timeout, "timeout", 0, "kill a child after this long (0: the scenario's longest possible duration + 2 min)")

	var ph phaseFlags
	q := harness.QuickPhases()
	dd := func(f, q harness.Duration) string { return fmt.Sprintf(" (full %v, quick %v)", f.D(), q.D()) }
	ff := func(f, q float64) string { return fmt.Sprintf(" (full %g, quick %g)", f, q) }
	fs.Var(&ph.d[0], "warm-up", "warm-up duration, publishing at --latency-rate"+dd(full.WarmUp, q.WarmUp))
	fs.Var(&ph.d[1], "idle", "idle duration, the CPU baseline"+dd(full.Idle, q.Idle))
	fs.Var(&ph.d[2], "latency", "latency phase duration"+dd(full.Latency, q.Latency))
	fs.Var(&ph.d[3], "drain", "drain after the warm-up and latency phases; ends early when all is delivered"+dd(full.Drain, q.Drain))
	fs.Var(&ph.d[4], "step", "duration of each ramp step"+dd(full.Step, q.Step))
	fs.Var(&ph.d[5], "step-drain", "drain after each ramp step; ends early when all is delivered"+dd(full.StepDrain, q.StepDrain))
	fs.Var(&ph.d[6], "overload", "overload phase duration, after the ramp, at --overload-factor × the max holding rate; 0: none"+dd(full.Overload, q.Overload))
	fs.Var(&ph.d[7], "overload-drain", "longest wait after the overload phase for every acknowledged publish to reach every node"+dd(full.OverloadDrain, q.OverloadDrain))
	fs.Var(&ph.f[3], "overload-factor", "overload phase rate ÷ the max holding rate (the highest ramp rate tried if none held)"+ff(full.OverloadFactor, q.OverloadFactor))
	fs.Var(&ph.f[0], "latency-rate", "offered rate of the warm-up and latency phases, msg/s"+ff(full.LatencyRate, q.LatencyRate))
	fs.Var(&ph.f[1], "ramp-start", "first ramp rate, msg/s; each step doubles it"+ff(full.RampStart, q.RampStart))
	fs.Var(&ph.f[2], "ramp-max", "last ramp rate, msg/s; 0: no ramp"+ff(full.RampMax, q.RampMax))
	fs.Var(&ph.publishers, "publishers", fmt.Sprintf("most Publish calls in flight at once, each scheduled message on its own goroutine; 1: one at a time (full %d, quick %d)", full.Publishers, q.Publishers))
	fs.Var(&ph.refine, "ramp-refine", fmt.Sprintf("extra steps after the ramp, each at the geometric mean of the highest rate that held and the lowest that did not (full %d, quick %d)", full.RampRefine, q.RampRefine))

	fs.BoolVar(&o.child, "child", false, "internal: run one system and print its JSON result")
	fs.StringVar(&o.impl, "impl", "", "internal (child): the system")
	var profile string
	fs.StringVar(&profile, "profile", "", "internal (child): the profile")
	fs.IntVar(&o.payload, "payload", 0, "internal (child): the payload size")
	fs.StringVar(&o.phaseConfig, "phase-config", "", "internal (child): the scenario, JSON")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: bench [flags]\n\nRuns the gossip benchmark suite (see docs/PERFORMANCE.md). Flags:\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	o.profile = harness.Profile(profile)

	if o.quick {
		if !set["nodes"] {
			nodes = "20"
		}
		if !set["payloads"] {
			payloads = "100"
		}
		o.phases = harness.QuickPhases()
	} else {
		o.phases = full
	}
	ph.apply(&o.phases)
	var err error
	if o.nodes, err = intList(nodes); err != nil {
		return nil, fmt.Errorf("--nodes: %w", err)
	}
	if o.payloads, err = intList(payloads); err != nil {
		return nil, fmt.Errorf("--payloads: %w", err)
	}
	for _, p := range o.payloads {
		if err := harness.ValidatePayloadSize(p); err != nil {
			return nil, fmt.Errorf("--payloads: %w", err)
		}
	}
	for _, n := range o.nodes {
		if n < 2 {
			return nil, fmt.Errorf("--nodes: %d is fewer than 2", n)
		}
	}
	for _, s := range strings.Split(implList, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if _, ok := newImpl(s); !ok {
			return nil, fmt.Errorf("--impls: unknown system %q (have %s)", s, strings.Join(implNames(), ", "))
		}
		o.impls = append(o.impls, s)
	}
	for _, s := range strings.Split(profiles, ",") {
		switch p := harness.Profile(strings.TrimSpace(s)); p {
		case harness.ProfileDefault, harness.ProfileEqualised:
			o.profiles = append(o.profiles, p)
		default:
			return nil, fmt.Errorf("--profiles: unknown profile %q (default, equalised)", s)
		}
	}
	if o.degree < 1 {
		return nil, fmt.Errorf("--degree must be at least 1")
	}
	if !o.child && (len(o.impls) == 0 || len(o.profiles) == 0) {
		return nil, fmt.Errorf("nothing to run: --impls and --profiles must name at least one each")
	}
	return o, o.phases.Validate()
}

func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty list")
	}
	return out, nil
}

// phaseFlags are the per-phase flags; only the ones given override the
// preset (full or quick).
type phaseFlags struct {
	d          [8]optDuration
	f          [4]optFloat
	refine     optInt
	publishers optInt
}

func (p *phaseFlags) apply(ph *harness.Phases) {
	for i, dst := range []*harness.Duration{&ph.WarmUp, &ph.Idle, &ph.Latency, &ph.Drain, &ph.Step, &ph.StepDrain, &ph.Overload, &ph.OverloadDrain} {
		if p.d[i].set {
			*dst = harness.Duration(p.d[i].v)
		}
	}
	for i, dst := range []*float64{&ph.LatencyRate, &ph.RampStart, &ph.RampMax, &ph.OverloadFactor} {
		if p.f[i].set {
			*dst = p.f[i].v
		}
	}
	if p.refine.set {
		ph.RampRefine = p.refine.v
	}
	if p.publishers.set {
		ph.Publishers = p.publishers.v
	}
}

type optDuration struct {
	v   time.Duration
	set bool
}

func (o *optDuration) String() string { return o.v.String() }
func (o *optDuration) Set(s string) (err error) {
	o.v, err = time.ParseDuration(s)
	o.set = err == nil
	return err
}

type optInt struct {
	v   int
	set bool
}

func (o *optInt) String() string { return strconv.Itoa(o.v) }
func (o *optInt) Set(s string) (err error) {
	o.v, err = strconv.Atoi(s)
	o.set = err == nil
	return err
}

type optFloat struct {
	v   float64
	set bool
}

func (o *optFloat) String() string { return strconv.FormatFloat(o.v, 'g', -1, 64) }
func (o *optFloat) Set(s string) (err error) {
	o.v, err = strconv.ParseFloat(s, 64)
	o.set = err == nil
	return err
}
