package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/grpc-gossip/gossip/bench/internal/harness"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRegistryNames(t *testing.T) {
	for _, name := range implNames() {
		im, ok := newImpl(name)
		if !ok || im.Name() != name {
			t.Errorf("registry %q makes an Impl named %q", name, im.Name())
		}
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"--quick"})
	if err != nil {
		t.Fatal(err)
	}
	if len(o.nodes) != 1 || o.nodes[0] != 20 || len(o.payloads) != 1 || o.payloads[0] != 100 ||
		len(o.profiles) != 2 || len(o.impls) != len(impls) || o.phases != harness.QuickPhases() {
		t.Errorf("--quick: %+v", o)
	}
	o, err = parseFlags([]string{"--quick", "--nodes", "5,7", "--step", "3s", "--ramp-max", "800", "--impls", "gossip-unary"})
	if err != nil {
		t.Fatal(err)
	}
	if o.nodes[1] != 7 || o.phases.Step.D() != 3*time.Second || o.phases.RampMax != 800 || o.phases.Idle != harness.QuickPhases().Idle || len(o.impls) != 1 {
		t.Errorf("overrides: %+v", o)
	}
	o, err = parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.nodes) != 2 || len(o.payloads) != 3 || o.phases != harness.FullPhases() {
		t.Errorf("full: %+v", o)
	}
	for _, bad := range [][]string{
		{"--impls", "nope"}, {"--profiles", "fast"}, {"--payloads", "4"}, {"--nodes", "1"}, {"--degree", "0"}, {"extra"},
	} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestFormatting(t *testing.T) {
	for _, tc := range []struct {
		m    harness.Millis
		want string
	}{{1.234, "1.23"}, {12.34, "12.3"}, {1234.5, "1234"}, {harness.Inf, "∞"}} {
		if got := ms(tc.m); got != tc.want {
			t.Errorf("ms(%g) = %q, want %q", tc.m, got, tc.want)
		}
	}
	if sizeString(65536) != "64 KiB" || sizeString(100) != "100 B" {
		t.Error("sizeString")
	}
	r := &harness.RunResult{Phases: harness.QuickPhases(), Ramp: []harness.PhaseResult{{OfferedRate: 100}}}
	if rateString(r) != "<100" {
		t.Errorf("rateString none held: %q", rateString(r))
	}
	r.Ramp[0].Holds, r.MaxHoldingRate = true, 100
	if rateString(r) != "100" {
		t.Errorf("rateString: %q", rateString(r))
	}
}

// TestReportFiles writes the table, Markdown and plots of a synthetic
// report, including a run that never completed a message and a failed run.
func TestReportFiles(t *testing.T) {
	cdf := make([]harness.Millis, 101)
	for i := range cdf {
		cdf[i] = harness.Millis(1 + i)
	}
	cdf[100] = harness.Inf
	ok := &harness.RunResult{
		Impl: "gossip-unary", Profile: harness.ProfileDefault, Nodes: 20, Payload: 100, Phases: harness.QuickPhases(),
		Describe: []string{"fanout all"},
		Latency: harness.PhaseResult{Scheduled: 10, DeliveryRatio: 0.99, CopiesPerDelivery: 6.5, T100CDF: cdf,
			T100: harness.Quantiles{P50: 50, P99: harness.Inf, Max: harness.Inf, Missing: 1}},
		Ramp: []harness.PhaseResult{
			{OfferedRate: 100, DeliveredRate: 100, Holds: true},
			{OfferedRate: 200, DeliveredRate: 150, Reason: "delivery"},
		},
		MaxHoldingRate: 100,
	}
	equal := *ok
	equal.Profile = harness.ProfileEqualised
	equal.Latency.T100CDF = nil
	failed := &harness.RunResult{Impl: "memberlist", Profile: harness.ProfileDefault, Nodes: 20, Payload: 100, Error: "exit status 1"}
	rep := &Report{Command: []string{"bench", "--quick"}, Phases: harness.QuickPhases(), Runs: []*harness.RunResult{ok, &equal, failed}}

	var sb strings.Builder
	printTable(&sb, rep)
	for _, want := range []string{"gossip-unary", "99.000%", "50.0/∞/∞", "ERROR: exit status 1"} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, sb.String())
		}
	}
	dir := t.TempDir()
	if err := writeMarkdown(filepath.Join(dir, "table.md"), rep); err != nil {
		t.Fatal(err)
	}
	files, err := writePlots(dir, rep)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Errorf("plots: %v", files)
	}
	for _, f := range files {
		if st, err := os.Stat(f); err != nil || st.Size() < 1000 {
			t.Errorf("%s: %v", f, err)
		}
	}
}
