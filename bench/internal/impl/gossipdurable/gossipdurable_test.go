package gossipdurable

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/grpc-gossip/gossip/bench/internal/harness"
	"github.com/grpc-gossip/gossip/bench/internal/impl/gossipgrpc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestSmoke runs a short scenario on 5 real nodes with their state on
// disk: every message is still delivered, about once per node. It runs
// gossip-durable-nosync: the smoke's drain (500 ms) is short for a loaded
// machine under the race detector (gossip-stream's smoke misses it at
// times too), fsynced commits of 5 nodes on one disk make that likelier,
// and what is checked here — the nodes' data dirs, their cleanup,
// delivery — is the same with either policy; the suite measures
// --sync always.
func TestSmoke(t *testing.T) {
	gossipgrpc.Smoke(t, NewNoSync, "persistence: every node keeps", func(t *testing.T, p harness.Profile, res *harness.RunResult) {
		if c := res.Latency.CopiesPerDelivery; c > 2.5 {
			t.Errorf("%s: %g copies per delivery in the latency phase", p, c)
		}
	})
}
