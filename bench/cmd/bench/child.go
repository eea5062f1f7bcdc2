package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"

	"github.com/grpc-gossip/gossip/bench/internal/harness"
)

// runChild runs one system with the scenario from --phase-config and
// writes its RunResult as JSON to stdout. Nothing else may write to
// stdout, so os.Stdout is pointed at stderr for the libraries under test.
func runChild(o *options) int {
	out := os.Stdout
	os.Stdout = os.Stderr
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).
		With("impl", o.impl, "profile", o.profile, "nodes", o.nodes[0], "payload", o.payload)

	fail := func(err error) int {
		log.Error("child failed", "err", err)
		return 1
	}
	var ph harness.Phases
	if err := json.Unmarshal([]byte(o.phaseConfig), &ph); err != nil {
		return fail(fmt.Errorf("--phase-config: %w", err))
	}
	impl, ok := newImpl(o.impl)
	if !ok {
		return fail(fmt.Errorf("unknown system %q", o.impl))
	}
	if o.pprof != "" {
		f, err := os.Create(filepath.Join(o.pprof, fmt.Sprintf("%s-%s-n%d-%dB.cpu.pprof", o.impl, o.profile, o.nodes[0], o.payload)))
		if err != nil {
			return fail(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fail(err)
		}
		defer pprof.StopCPUProfile()
	}

	limit, err := memoryLimit()
	if err != nil {
		return fail(err)
	}
	sigCtx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancelCause(sigCtx)
	defer cancel(nil)
	go guardMemory(ctx, cancel, limit, log)
	cfg := harness.ClusterConfig{
		Nodes: o.nodes[0], Profile: o.profile, Degree: o.degree, Seed: ph.Seed, MaxPayload: o.payload,
	}
	res, err := harness.Run(ctx, impl, cfg, ph, o.payload, log)
	if res == nil {
		return fail(err)
	}
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && cause != context.Canceled {
			err = cause // say why the run was stopped, not just "canceled"
		}
		res.Error = err.Error()
		log.Error("run ended with an error", "err", err)
	}
	enc := json.NewEncoder(out)
	if err := enc.Encode(res); err != nil {
		return fail(err)
	}
	return 0
}
