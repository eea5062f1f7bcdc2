package gossipunary

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/grpc-gossip/gossip/bench/internal/harness"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestSmoke runs a short scenario (about 1 s) on 5 real nodes over
// loopback gRPC in both profiles.
func TestSmoke(t *testing.T) {
	ms := func(n int) harness.Duration { return harness.Duration(time.Duration(n) * time.Millisecond) }
	ph := harness.Phases{
		WarmUp: ms(100), Idle: ms(100), LatencyRate: 100, Latency: ms(300), Drain: ms(500),
		RampStart: 200, RampFactor: 2, RampMax: 400, Step: ms(150), StepDrain: ms(500),
		HoldDelivery: 0.999, HoldP99: harness.Duration(time.Second), Seed: 1,
	}
	for _, p := range []harness.Profile{harness.ProfileDefault, harness.ProfileEqualised} {
		t.Run(string(p), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cfg := harness.ClusterConfig{Nodes: 5, Profile: p, Degree: 4, Seed: 1}
			res, err := harness.Run(ctx, New(), cfg, ph, 100, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			lat := res.Latency
			if lat.Scheduled == 0 || lat.PublishErrors != 0 || lat.DeliveryRatio != 1 {
				t.Errorf("latency phase: %d scheduled, %d publish errors, delivery %g", lat.Scheduled, lat.PublishErrors, lat.DeliveryRatio)
			}
			// Every receipt needs at least one request on the wire, and
			// each request costs more than the payload in bytes.
			if lat.CopiesPerDelivery < 1 || lat.BytesPerDelivery < 100 {
				t.Errorf("wire: %g copies, %g bytes per delivery", lat.CopiesPerDelivery, lat.BytesPerDelivery)
			}
			if res.AppDuplicates != 0 || res.Unknown != 0 {
				t.Errorf("app duplicates %d, unknown %d", res.AppDuplicates, res.Unknown)
			}
			if res.SelfReceipts == 0 {
				t.Error("the library delivers locally, but no self receipts were seen")
			}
			if len(res.Ramp) == 0 || len(res.Describe) == 0 {
				t.Errorf("%d ramp steps, describe %q", len(res.Ramp), res.Describe)
			}
		})
	}
}

func TestStartErrors(t *testing.T) {
	for _, cfg := range []harness.ClusterConfig{
		{Nodes: 1, Profile: harness.ProfileDefault},
		{Nodes: 3, Profile: harness.ProfileEqualised, Degree: 0},
		{Nodes: 3, Profile: "other"},
	} {
		m := New()
		if err := m.Start(context.Background(), cfg, func(int, []byte) {}); err == nil {
			t.Errorf("Start(%+v) succeeded", cfg)
		}
		if err := m.Close(); err != nil {
			t.Errorf("Close after failed Start: %v", err)
		}
	}
}
