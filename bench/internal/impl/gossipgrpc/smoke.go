package gossipgrpc

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/grpc-gossip/gossip/bench/internal/harness"
)

// Smoke runs a short scenario (about 1 s) on 5 real nodes over loopback
// gRPC in both profiles with newImpl, checks what holds for either
// transport (complete delivery in the latency phase, at least one copy
// and 100 bytes on the wire per delivery, no duplicates reach the
// application, local delivery, ramp steps, and a description that
// contains transport), with Publish called concurrently as the suite
// calls it (harness.DefaultPublishers in flight), and then calls check,
// if not nil, with each profile's result. It is the unit test of the gossipunary and
// gossipstream packages.
func Smoke(t *testing.T, newImpl func() harness.Impl, transport string, check func(t *testing.T, p harness.Profile, res *harness.RunResult)) {
	t.Helper()
	ms := func(n int) harness.Duration { return harness.Duration(time.Duration(n) * time.Millisecond) }
	// Drain ends as soon as every node has every message; its bound is
	// generous because this runs in real time, under -race, on machines
	// whose other work can stall a node for a second (500 ms failed there).
	ph := harness.Phases{
		WarmUp: ms(100), Idle: ms(100), LatencyRate: 100, Latency: ms(300), Drain: ms(5000),
		RampStart: 200, RampFactor: 2, RampMax: 400, Step: ms(150), StepDrain: ms(500),
		HoldDelivery: 0.999, HoldP99: harness.Duration(time.Second), Publishers: harness.DefaultPublishers, Seed: 1,
	}
	for _, p := range []harness.Profile{harness.ProfileDefault, harness.ProfileEqualised} {
		t.Run(string(p), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cfg := harness.ClusterConfig{Nodes: 5, Profile: p, Degree: 4, Seed: 1}
			res, err := harness.Run(ctx, newImpl(), cfg, ph, 100, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			lat := res.Latency
			if lat.Scheduled == 0 || lat.PublishErrors != 0 || lat.DeliveryRatio != 1 {
				t.Errorf("latency phase: %d scheduled, %d publish errors, delivery %g", lat.Scheduled, lat.PublishErrors, lat.DeliveryRatio)
			}
			// Every receipt needs at least one copy on the wire, and
			// each copy costs more than the payload in bytes.
			if lat.CopiesPerDelivery < 1 || lat.BytesPerDelivery < 100 {
				t.Errorf("wire: %g copies, %g bytes per delivery", lat.CopiesPerDelivery, lat.BytesPerDelivery)
			}
			if res.AppDuplicates != 0 || res.Unknown != 0 {
				t.Errorf("app duplicates %d, unknown %d", res.AppDuplicates, res.Unknown)
			}
			if res.SelfReceipts == 0 {
				t.Error("the library delivers locally, but no self receipts were seen")
			}
			if len(res.Ramp) == 0 || !strings.Contains(strings.Join(res.Describe, "\n"), transport) {
				t.Errorf("%d ramp steps, describe %q (want %q)", len(res.Ramp), res.Describe, transport)
			}
			if check != nil {
				check(t, p, res)
			}
		})
	}
}

// StartErrors checks that newImpl's Start rejects what it cannot run and
// that Close after a failed Start succeeds.
func StartErrors(t *testing.T, newImpl func() harness.Impl) {
	t.Helper()
	for _, cfg := range []harness.ClusterConfig{
		{Nodes: 1, Profile: harness.ProfileDefault},
		{Nodes: 3, Profile: harness.ProfileEqualised, Degree: 0},
		{Nodes: 3, Profile: "other"},
	} {
		m := newImpl()
		if err := m.Start(context.Background(), cfg, func(int, []byte) {}); err == nil {
			t.Errorf("Start(%+v) succeeded", cfg)
		}
		if err := m.Close(); err != nil {
			t.Errorf("Close after failed Start: %v", err)
		}
	}
}
