package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/grpc-gossip/gossip/internal/core"
	"github.com/grpc-gossip/gossip/internal/sim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = realMain(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestRunPrintsReport(t *testing.T) {
	code, out, errs := runCLI(t, "--protocol", "push", "--nodes", "200", "--degree", "6", "--messages", "3", "--per-message", "--quiet")
	if code != exitOK || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	for _, want := range []string{
		"200 nodes, random 6-regular (1200 links), fanout 3, loss 0%, latency lognormal:median=10ms,sigma=0.5, 3 messages, seed 1",
		"time to 50% of reachable", "time to 100%", "rounds (max hops)",
		"delivery:", "copies per delivery", "memory:    per node", "run:       virtual",
		"reachable  delivered",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestRingFigures: the ring of 20 with 5 ms links takes 19 hops and 95 ms.
func TestRingFigures(t *testing.T) {
	code, out, _ := runCLI(t, "--protocol", "push", "--nodes", "20", "--topology", "ring", "--latency", "const:5ms", "--messages", "1", "--no-memory", "--quiet")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(out, "time to 100%              95.0ms  95.0ms  95.0ms") || !strings.Contains(out, "rounds (max hops)             19              19") {
		t.Errorf("ring of 20:\n%s", out)
	}
}

func TestSweepAndJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.json")
	code, out, errs := runCLI(t, "--protocol", "flood", "--sweep", "100,200", "--degree", "4", "--loss", "0.05",
		"--messages", "2", "--json", path, "--markdown", "--quiet")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	for _, want := range []string{"growth with N: random 4-regular", "| metric | N=100 | N=200 | slope | per ×10 N |", "| copies/delivery |", "| mem/node idle |"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rs []sim.Report
	if err := json.Unmarshal(b, &rs); err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].Scenario.Nodes != 100 || rs[1].Scenario.Nodes != 200 ||
		rs[1].Scenario.Core.Fanout != core.FanoutAll || rs[1].Scenario.Latency.Kind != sim.LogNormal ||
		rs[1].Summary.Expected != 400 || rs[1].Perf.Memory == nil {
		t.Errorf("JSON reports: %+v", rs)
	}
}

func TestJSONToStdout(t *testing.T) {
	code, out, _ := runCLI(t, "--nodes", "50", "--degree", "4", "--messages", "1", "--json", "-", "--no-memory", "--quiet")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	var r sim.Report
	if err := json.Unmarshal([]byte(out[strings.Index(out, "\n{")+1:]), &r); err != nil {
		t.Fatalf("%v in:\n%s", err, out)
	}
	if r.Scenario.Nodes != 50 || r.Summary.Expected != 50 {
		t.Errorf("report %+v", r)
	}
}

func TestBadFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--latency", "fast"}, "invalid value"},
		{[]string{"--fanout", "0"}, "invalid value"},
		{[]string{"--fanout", "some"}, "invalid value"},
		{[]string{"--topology", "star"}, `topology "star"`},
		{[]string{"--sweep", "10,x"}, "bad node count"},
		{[]string{"--sweep", "1001", "--topology", "random", "--degree", "7"}, "must be even"},
		{[]string{"--loss", "2"}, "loss 2"},
		{[]string{"--protocol", "gossip"}, `protocol "gossip"`},
		{[]string{"--fanout", "3"}, "--fanout applies to --protocol push only"},
		{[]string{"--protocol=flood", "--fanout", "3"}, "--fanout applies"},
		{[]string{"--partition", "0.5"}, "only --protocol push and flood"},
		{[]string{"--repair", "magic", "--crash", "0.1"}, `repair "magic"`},
		{[]string{"--repair", "swim", "--nodes", "5000", "--crash", "0.1"}, "too many"},
		{[]string{"--fail", "0"}, "bad percentage"},
		{[]string{"--fail", "50", "--crash", "0.1"}, "own schedule"},
		{[]string{"--fail", "50", "--repair", "model,magic"}, `repair "magic"`},
		{[]string{"--fail", "50", "--fail-horizon", "soon"}, "--fail-horizon"},
		{[]string{"extra"}, "unexpected argument"},
		{[]string{"--nope"}, "flag provided but not defined"},
	} {
		code, out, errs := runCLI(t, tt.args...)
		if code != exitUsage || out != "" || !strings.Contains(errs, tt.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d and %q", tt.args, code, out, errs, exitUsage, tt.want)
		}
	}
	if code, _, errs := runCLI(t, "-h"); code != exitOK || !strings.Contains(errs, "Usage: gossip-sim") {
		t.Errorf("-h: exit %d, %q", code, errs)
	}
	if code, _, errs := runCLI(t, "--nodes", "10", "--degree", "2", "--quiet", "--json", "/nonexistent/dir/x.json"); code != exitError || !strings.Contains(errs, "x.json") {
		t.Errorf("unwritable JSON: exit %d, %q", code, errs)
	}
}

// TestDefaultIsPlumtree: without flags the simulator runs what users run.
func TestDefaultIsPlumtree(t *testing.T) {
	code, out, errs := runCLI(t, "--nodes", "100", "--messages", "20", "--drain", "2s", "--quiet")
	if code != exitOK || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	for _, want := range []string{
		"100 nodes, membership overlay, k=7 chosen", "plumtree, repair none, loss 0%",
		"reliability: 100% mean, 100% min", "RMR mean", "frames:", "streams:", "eager", "announced (IHAVE)",
		"reliability mean", "copies/delivery", "rounds (max hops)", "time to 100%",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestFailSweep: the failure sweep runs each fraction with each repair
// mode and prints the table; the JSON holds every report.
func TestFailSweep(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fail.json")
	code, out, errs := runCLI(t, "--fail", "50", "--nodes", "60", "--repair", "swim,none", "--fail-horizon", "0", "--drain", "2s",
		"--json", path, "--quiet")
	if code != exitOK || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	for _, want := range []string{`failure sweep: 60 nodes`, `first batch mean`, `\n50% +swim +30 `, `\n50% +none +30 `, `crash 50% at 6.75s`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rs []sim.Report
	if err := json.Unmarshal(b, &rs); err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].Scenario.Repair != sim.RepairSwim || rs[1].Scenario.Repair != sim.RepairNone ||
		rs[0].Live != 30 || rs[0].Membership == nil || len(rs[0].Batches) != 3 {
		t.Errorf("JSON reports: %d, batches %+v", len(rs), rs[0].Batches)
	}
}

// TestHelpDefaults: the help text shows the defaults of the protocol
// given, equal to the scenarios' own.
func TestHelpDefaults(t *testing.T) {
	for _, tt := range []struct {
		args []string
		sc   sim.Scenario
	}{
		{[]string{"-h"}, sim.DefaultScenario()},
		{[]string{"--protocol", "push", "-h"}, sim.DefaultUnaryScenario(sim.ProtoPush)},
	} {
		code, _, errs := runCLI(t, tt.args...)
		if code != exitOK {
			t.Fatalf("%v: exit %d", tt.args, code)
		}
		for _, want := range []string{
			fmt.Sprintf("number of nodes (default %d)", tt.sc.Nodes),
			fmt.Sprintf("each from a random live node (default %d)", tt.sc.Messages),
			fmt.Sprintf("(default %q)", tt.sc.Protocol),
			fmt.Sprintf("(default %q)", tt.sc.Topology),
		} {
			if !strings.Contains(errs, want) {
				t.Errorf("%v: help lacks %q", tt.args, want)
			}
		}
	}
}

func TestParsePercents(t *testing.T) {
	got, err := parsePercents("10, 50,80%,95")
	if err != nil || !slices.Equal(got, []float64{0.1, 0.5, 0.8, 0.95}) {
		t.Errorf("parsePercents: %v, %v", got, err)
	}
	for _, bad := range []string{"", "0", "100", "x", "-5"} {
		if _, err := parsePercents(bad); err == nil {
			t.Errorf("parsePercents(%q) accepted", bad)
		}
	}
	if p := protocolArg([]string{"--nodes", "5", "-protocol=push"}); p != "push" {
		t.Errorf("protocolArg = %q", p)
	}
	if p := protocolArg([]string{"--protocol", "flood"}); p != "flood" {
		t.Errorf("protocolArg = %q", p)
	}
}

func TestParseSizes(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []int
	}{
		{"1000", []int{1000}},
		{"1000,10k, 100k", []int{1000, 10000, 100000}},
		{"1m", []int{1000000}},
	} {
		got, err := parseSizes(tt.in)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("parseSizes(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "0", "-5", "k", "1.5k", "10,,20"} {
		if got, err := parseSizes(bad); err == nil {
			t.Errorf("parseSizes(%q) = %v, want an error", bad, got)
		}
	}
}

func TestFanoutFlag(t *testing.T) {
	var v int
	f := fanoutFlag{&v}
	for in, want := range map[string]int{"3": 3, "all": core.FanoutAll, "-1": core.FanoutAll, "12": 12} {
		if err := f.Set(in); err != nil || v != want {
			t.Errorf("Set(%q): %d, %v", in, v, err)
		}
	}
	v = core.FanoutAll
	if f.String() != "all" {
		t.Errorf("String() = %q", f.String())
	}
}
