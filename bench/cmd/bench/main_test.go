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
	o, err = parseFlags([]string{"--quick", "--overload", "0"})
	if err != nil || o.phases.Overload != 0 || o.phases.OverloadFactor != 3 {
		t.Errorf("--overload 0: %+v, %v", o, err)
	}
	o, err = parseFlags([]string{"--overload", "5s", "--overload-factor", "2", "--overload-drain", "1s"})
	if err != nil || o.phases.Overload.D() != 5*time.Second || o.phases.OverloadFactor != 2 || o.phases.OverloadDrain.D() != time.Second {
		t.Errorf("overload flags: %+v, %v", o, err)
	}
	if _, err := parseFlags([]string{"--overload-factor", "0"}); err == nil || !strings.Contains(err.Error(), "overload") {
		t.Errorf("--overload-factor 0: %v", err)
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

func TestPromisesNoLoss(t *testing.T) {
	for _, name := range implNames() {
		if want := name != "memberlist" && !strings.HasPrefix(name, "gossipsub") && name != "gossip-unary"; promisesNoLoss(name) != want {
			t.Errorf("promisesNoLoss(%q) = %v", name, !want)
		}
	}
}

func TestLossFailure(t *testing.T) {
	lossy := &harness.OverloadResult{Lost: 3, LostReceipts: 5, LostMaxPerNode: 2}
	for _, tc := range []struct {
		impl string
		o    *harness.OverloadResult
		fail bool
	}{
		{"gossip-stream", lossy, true},
		{"gossip-durable", lossy, true},
		{"gossip-unary", lossy, false}, // the seed's push: give-ups are not repaired (DESIGN §6)
		{"gossipsub", lossy, false},    // reported, not promised
		{"memberlist", lossy, false},   // reported, not promised
		{"gossip-stream", &harness.OverloadResult{}, false},
		{"gossip-stream", nil, false}, // no overload phase
	} {
		msg := lossFailure(&harness.RunResult{Impl: tc.impl, Overload: tc.o})
		if (msg != "") != tc.fail || tc.fail && !strings.Contains(msg, "LOSS UNDER OVERLOAD: 3 acknowledged") {
			t.Errorf("%s %+v: %q", tc.impl, tc.o, msg)
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
	equal.Impl, equal.Profile = "gossip-stream", harness.ProfileEqualised // a system that promises no loss: its loss is marked
	equal.Latency.T100CDF = nil
	ok.Overload = &harness.OverloadResult{Factor: 3, BaseRate: 100, Basis: "max holding rate", Drained: true,
		Phase: harness.PhaseResult{OfferedRate: 300, Scheduled: 900, Published: 800, PublishErrors: 60, Unpublished: 40,
			PublishErrorKinds: map[string]int{"ResourceExhausted": 50, "DeadlineExceeded": 10}}}
	equal.Overload = &harness.OverloadResult{Factor: 3, BaseRate: 100, Basis: "highest ramp rate tried (none held)",
		Lost: 7, LostMaxPerNode: 4, Phase: harness.PhaseResult{OfferedRate: 300, Scheduled: 900, Published: 900}}
	failed := &harness.RunResult{Impl: "memberlist", Profile: harness.ProfileDefault, Nodes: 20, Payload: 100, Error: "exit status 1"}
	rep := &Report{Command: []string{"bench", "--quick"}, Phases: harness.QuickPhases(), Runs: []*harness.RunResult{ok, &equal, failed}}

	var sb strings.Builder
	printTable(&sb, rep)
	for _, want := range []string{"gossip-unary", "99.000%", "50.0/∞/∞", "ERROR: exit status 1",
		"Overload:", "60 (DE 10, RE 50)", "7 (max 4) LOSS", "(bound)", "none held"} {
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
