package gossipstream

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/grpc-gossip/gossip/bench/internal/harness"
	"github.com/grpc-gossip/gossip/bench/internal/impl/gossipgrpc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestSmoke runs a short scenario (about 1 s) on 5 real nodes over
// loopback gRPC in both profiles, over streams. Plumtree sends each
// message about once per node: far fewer copies than a flood.
func TestSmoke(t *testing.T) {
	gossipgrpc.Smoke(t, New, "transport: Gossip.Stream", func(t *testing.T, p harness.Profile, res *harness.RunResult) {
		// Pruning needs duplicates first, so allow for the trees'
		// construction on a short run: a flood of the 5-node full mesh
		// would be 3 copies per delivery.
		if c := res.Latency.CopiesPerDelivery; c > 2.5 {
			t.Errorf("%s: %g copies per delivery in the latency phase", p, c)
		}
	})
}

func TestStartErrors(t *testing.T) { gossipgrpc.StartErrors(t, New) }
